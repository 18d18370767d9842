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

    public struct AsyncIterator: AsyncIteratorProtocol {
        let fetch: Fetch
        var cursor: Cursor?
        @usableFromInline var remaining: Int
        @usableFromInline var page = EventPage()

        init(fetch: @escaping Fetch, cursor: Cursor?, remaining: Int) {
            self.fetch = fetch
            self.cursor = cursor
            self.remaining = remaining
        }

        /// Called by `for try await` with the caller's isolation: the loop stays on
        /// the caller's executor (a main-actor loop does not hop to the global pool
        /// and back for every event); only fetching a page may leave it. Inlined
        /// into the caller, so that an event already fetched costs no async call
        /// (see ``EventPage``); a page never holds more than `remaining` events.
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> RecordedEvent? {
            if let event = page.next() {
                remaining -= 1
                return event
            }
            return try await nextPage(isolation: actor)
        }

        /// Fetches the next page and hands out its first event; nil at the end.
        @usableFromInline
        mutating func nextPage(isolation actor: isolated (any Actor)?) async throws -> RecordedEvent? {
            guard let current = cursor, remaining > 0 else { return nil }
            let (events, next) = try await fetch(current, Swift.min(remaining, EventSequence.pageSize))
            cursor = events.isEmpty ? nil : next
            page = EventPage(events)
            guard let event = page.next() else { return nil }
            remaining -= 1
            return event
        }

        @inlinable
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
