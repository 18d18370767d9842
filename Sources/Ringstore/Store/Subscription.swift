/// Which events a `$all` subscription delivers.
public struct SubscriptionFilter: Sendable, Hashable {
    enum Rule: Sendable, Hashable {
        case streamPrefixes([String])
        case eventTypePrefixes([String])
        case eventTypes(Set<String>)
    }
    let rule: Rule

    /// Events of streams whose names start with any of `prefixes`.
    public static func streamPrefix(_ prefixes: String...) -> SubscriptionFilter { .init(rule: .streamPrefixes(prefixes)) }
    /// Events whose type starts with any of `prefixes`.
    public static func eventTypePrefix(_ prefixes: String...) -> SubscriptionFilter { .init(rule: .eventTypePrefixes(prefixes)) }
    /// Events whose type is one of `types`.
    public static func eventTypes(_ types: Set<String>) -> SubscriptionFilter { .init(rule: .eventTypes(types)) }

    func matches(_ event: RecordedEvent) -> Bool {
        switch rule {
        case .streamPrefixes(let prefixes): prefixes.contains { event.stream.hasPrefix($0) }
        case .eventTypePrefixes(let prefixes): prefixes.contains { event.type.hasPrefix($0) }
        case .eventTypes(let types): types.contains(event.type)
        }
    }
}

/// A subscription: every event from a starting point on, first those already
/// stored (catch-up), then each new one as it is acknowledged (live), without
/// end until the task iterating it is cancelled or the store closes.
///
/// It is a cursor, not a buffer: it reads a page at a time from where it got
/// to, and when it reaches the end it waits until more appends are
/// acknowledged. So no event is skipped or delivered twice at the switch from
/// catch-up to live, and a slow subscriber costs one page of memory — it just
/// reads further behind. Iterating ends (returns nil) when the task is
/// cancelled or the store is closed.
public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let store: EventStore
    let target: Target
    let filter: SubscriptionFilter?

    enum Target: Sendable {
        case stream(String, next: UInt64)
        case all(next: UInt64?)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let store: EventStore
        var target: Target
        let filter: SubscriptionFilter?
        /// Decoded blocks kept between catch-up pages of `$all` (see ``AllReadWindow``).
        let window: AllReadWindow
        @usableFromInline var page = EventPage()

        init(store: EventStore, target: Target, filter: SubscriptionFilter?, window: AllReadWindow) {
            self.store = store
            self.target = target
            self.filter = filter
            self.window = window
        }

        /// Called by `for try await` with the caller's isolation, so that handing
        /// out a buffered event does not hop executors; inlined into the caller,
        /// so that it costs no async call either (see ``EventSequence``, ``EventPage``).
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> RecordedEvent? {
            if let event = page.next() { return event }
            return try await nextPage(isolation: actor)
        }

        /// Waits for and fetches the next page and hands out its first event; nil once ended.
        @usableFromInline
        mutating func nextPage(isolation actor: isolated (any Actor)?) async throws -> RecordedEvent? {
            while true {
                if let event = page.next() { return event }
                if Task.isCancelled || store.isClosed { return nil }
                let seen = store.journal.writer.acknowledger.changes.generation
                do {
                    page = EventPage(try await fetch(isolation: actor))
                } catch let error as RingstoreError where error.code == .storeClosed {
                    return nil
                }
                if page.isEmpty {
                    await store.journal.writer.acknowledger.changes.wait(after: seen)
                }
            }
        }

        @inlinable
        public mutating func next() async throws -> RecordedEvent? {
            try await next(isolation: nil)
        }

        /// The next page from the cursor (possibly empty), advancing the cursor past it.
        private mutating func fetch(isolation actor: isolated (any Actor)?) async throws -> [RecordedEvent] {
            switch target {
            case .stream(let name, let next):
                // A tombstoned stream ends the subscription with `.streamDeleted`.
                if try store.metadataState(of: name).tombstoned { throw store.journal.writer.deletedError(name) }
                guard let tail = try store.visibleTail(of: name), tail.lastVersion >= next else { return [] }
                let events: [RecordedEvent]
                do {
                    events = try await store.read(stream: name, from: .version(next), maxCount: EventSequence.pageSize).collect()
                } catch let error as RingstoreError where error.code == .streamNotFound {
                    return []  // soft-deleted: wait for the stream to be written again
                }
                if let last = events.last { target = .stream(name, next: last.version + 1) }
                return events
            case .all(var next):
                // Pages whose events the filter rejects are skipped: an empty result means the end.
                while true {
                    try store.checkOpen()
                    let page = try store.readAllVisiblePage(cursor: next.map { .at($0) } ?? .start, direction: .forwards,
                                                            limit: EventSequence.pageSize, window: window)
                    // Continue after everything examined, hidden events included.
                    guard case .at(let scanned) = page.scanned else { return [] }
                    next = scanned
                    target = .all(next: scanned)
                    let events = filter.map { filter in page.events.filter(filter.matches) } ?? page.events
                    if !events.isEmpty || Task.isCancelled { return events }
                }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(store: store, target: target, filter: filter, window: AllReadWindow(budget: store.allReadBudget))
    }
}

extension EventStore {
    /// Every event of `stream` from `revision` on (`.start` by default): catch-up, then live.
    /// `.end` starts after the current last event (only new events).
    public func subscribe(to stream: String, from revision: StreamRevision = .start) throws -> Subscription {
        try checkOpen()
        try NameRules.validateStreamName(stream, allowReserved: true)
        try requireExactStreamName(stream)
        let next: UInt64 = switch revision {
        case .start: 0
        case .version(let v): v
        case .end: try visibleTail(of: stream).map { $0.lastVersion + 1 } ?? 0
        }
        return Subscription(store: self, target: .stream(stream, next: next), filter: nil)
    }

    /// Every event in global order from `position` on (`.start` by default), optionally
    /// filtered: catch-up, then live. `.end` starts after the current last event.
    public func subscribeToAll(from position: LogPosition = .start, filter: SubscriptionFilter? = nil) throws -> Subscription {
        try checkOpen()
        let next: UInt64? = switch position {
        case .start: nil
        case .position(let p): p
        case .end: journal.writer.acknowledged
        }
        return Subscription(store: self, target: .all(next: next), filter: filter)
    }
}
