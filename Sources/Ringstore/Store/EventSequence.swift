/// Events read from a store, fetched lazily in pages as the sequence is iterated.
///
/// Errors (a missing stream, a reader timeout, damaged data) are thrown from
/// iteration. Use ``collect()`` to gather a short read into an array.
public struct EventSequence: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    /// Where the next page starts; `nil` once the read is exhausted.
    enum Cursor: Sendable, Equatable {
        case start
        case end
        case at(UInt64)
    }

    /// Fetches up to `limit` events from `cursor`; returns them and where to continue.
    typealias Fetch = @Sendable (_ cursor: Cursor, _ limit: Int) async throws -> (events: [RecordedEvent], next: Cursor?)

    let start: Cursor
    let maxCount: Int
    let fetch: Fetch

    static let pageSize = 512

    /// The page after the one being handed out, fetched by a task of its own.
    ///
    /// Why: fetching a page (index entries, blocks read and decompressed,
    /// events made) is most of a read's work, and the consumer's loop waited
    /// for it page after page on one core. Started as soon as the previous
    /// page arrives, the next one is made on another core while the consumer
    /// goes through the current one. Pages stay in order (one fetch at a time,
    /// each from the cursor the last one returned) and a page still holds the
    /// events acknowledged when it was fetched, only a page earlier. At most
    /// one page is fetched ahead, and only after a full page (a short page is
    /// the end, or the live edge). An iterator dropped meanwhile cancels it.
    final class Ahead: Sendable {
        let cursor: Cursor
        let limit: Int
        let task: Task<(events: [RecordedEvent], next: Cursor?), any Error>

        init(cursor: Cursor, limit: Int, fetch: @escaping Fetch) {
            self.cursor = cursor
            self.limit = limit
            task = Task { try await fetch(cursor, limit) }
        }

        deinit { task.cancel() }

        /// The page, or an error thrown by its fetch; cancelling the waiting task cancels the fetch.
        func page() async throws -> (events: [RecordedEvent], next: Cursor?) {
            try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let fetch: Fetch
        var cursor: Cursor?
        var remaining: Int
        var page: [RecordedEvent] = []
        var index = 0
        var ahead: Ahead?

        init(fetch: @escaping Fetch, cursor: Cursor?, remaining: Int) {
            self.fetch = fetch
            self.cursor = cursor
            self.remaining = remaining
        }

        /// Called by `for try await` with the caller's isolation: the loop stays on
        /// the caller's executor (a main-actor loop does not hop to the global pool
        /// and back for every event); only fetching a page may leave it.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> RecordedEvent? {
            if index == page.count {
                guard let current = cursor, remaining > 0 else { return nil }
                let limit = Swift.min(remaining, EventSequence.pageSize)
                let fetched: (events: [RecordedEvent], next: Cursor?)
                if let ahead, ahead.cursor == current, ahead.limit == limit {
                    self.ahead = nil
                    fetched = try await ahead.page()
                } else {
                    ahead = nil
                    fetched = try await fetch(current, limit)
                }
                page = fetched.events
                index = 0
                cursor = page.isEmpty ? nil : fetched.next
                if page.isEmpty { return nil }
                if let next = cursor, page.count == limit, remaining > page.count {
                    ahead = Ahead(cursor: next, limit: Swift.min(remaining - page.count, EventSequence.pageSize), fetch: fetch)
                }
            }
            remaining -= 1
            defer { index += 1 }
            return page[index]
        }

        public mutating func next() async throws -> RecordedEvent? {
            try await next(isolation: nil)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(fetch: fetch, cursor: start, remaining: maxCount)
    }

    /// All events of the read, in order.
    public func collect() async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        for try await event in self { events.append(event) }
        return events
    }
}
