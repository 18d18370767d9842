import SystemPackage
import Synchronization

/// An event store in one directory: append events to streams, read them back by
/// stream or in global order.
///
/// Open with ``open(at:configuration:)`` and close with ``close()``. One store
/// directory can be open once at a time (a lock file refuses a second opener,
/// in this process or another); several stores, each in its own directory, can
/// be open in one process. All methods may be called from any task.
///
/// Every append goes into one ring journal whatever its stream, and is
/// acknowledged once durable (or, in relaxed mode, once written to the page
/// cache; see ``Configuration/Durability``).
public final class EventStore: Sendable {
    /// The store's directory.
    public let directory: String
    public let configuration: Configuration
    let journal: Journal
    private let lock: StoreLock
    private let closed = Atomic<Bool>(false)

    private init(directory: FilePath, configuration: Configuration, journal: Journal, lock: StoreLock) {
        self.directory = directory.string
        self.configuration = configuration
        self.journal = journal
        self.lock = lock
    }

    /// Opens the store in `path`, creating the directory (but not its parents)
    /// and the journal if they do not exist, and recovering after a crash.
    public static func open(at path: String, configuration: Configuration = Configuration()) async throws -> EventStore {
        try configuration.validate()
        let directory = FilePath(path)
        let parent = directory.removingLastComponent()
        if !StorageDirectory.isDirectory(directory) {
            guard parent.isEmpty || StorageDirectory.isDirectory(parent) else {
                throw RingstoreError(.invalidArgument, "cannot create store \(path): its parent folder \(parent) does not exist", path: path)
            }
            try StorageDirectory.create(directory)
        }
        let lock = try StoreLock(directory: directory)
        do {
            let journal = try Journal(directory: directory, configuration: configuration)
            return EventStore(directory: directory, configuration: configuration, journal: journal, lock: lock)
        } catch {
            lock.release()
            throw error
        }
    }

    /// Flushes everything, records a clean close, and releases the lock.
    /// Appends still in flight are acknowledged first; later calls fail with
    /// ``RingstoreError/Code/storeClosed``. Closing twice does nothing.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        defer { lock.release() }
        try await journal.close()
    }

    // MARK: - Appending

    /// Appends `events` to `stream` atomically and contiguously, and returns once
    /// they are durable (in relaxed mode: written).
    ///
    /// - Throws: ``RingstoreError`` with ``RingstoreError/Code/wrongExpectedVersion``
    ///   (carrying ``RingstoreError/currentVersion``) when the stream is not as
    ///   expected; `.invalidStreamName`, `.eventTooLarge`, `.appendTooLarge` or
    ///   `.invalidArgument` for bad input; `.journalFull` when the ring stayed full
    ///   past `journalFullWait`.
    ///
    /// Sending the same event IDs again at the same expected version (a retry)
    /// succeeds and returns the first append's result without writing anything.
    @discardableResult
    public func append(to stream: String, expectedVersion: ExpectedVersion = .any, events: [EventData]) async throws -> AppendResult {
        try checkOpen()
        let prepared = try prepare(stream: stream, expectedVersion: expectedVersion, events: events)
        return try await journal.writer.append(prepared)
    }

    private func prepare(stream: String, expectedVersion: ExpectedVersion, events: [EventData]) throws -> JournalWriter.PreparedAppend {
        try Naming.validateStreamName(stream)
        guard !events.isEmpty else {
            throw RingstoreError(.invalidArgument, "an append needs at least one event", stream: stream)
        }
        let streamCount = stream.utf8.count
        var lengths = [Int]()
        lengths.reserveCapacity(events.count)
        var total = 0
        for event in events {
            try Naming.validateEventType(event.type, stream: stream)
            let size = event.data.count + event.metadata.count
            guard size <= configuration.maxEventSize else {
                throw RingstoreError(.eventTooLarge,
                                     "event \(event.id) of type \(event.type) has \(size) bytes of data and metadata; the limit (maxEventSize) is \(configuration.maxEventSize)",
                                     stream: stream)
            }
            let length = JournalRecord.eventLength(streamCount: streamCount, typeCount: event.type.utf8.count,
                                                   metadataCount: event.metadata.count, dataCount: event.data.count)
            lengths.append(length)
            total += length
        }
        let limit = Int(journal.ring.capacity / 2)
        guard total <= limit else {
            throw RingstoreError(.appendTooLarge,
                                 "an append of \(events.count) events needs \(total) bytes of journal; one append may use at most half the journal (\(limit) bytes): split it or raise journalCapacity",
                                 stream: stream)
        }
        return .init(stream: stream, expected: expectedVersion, events: events, lengths: lengths, totalLength: total)
    }

    /// Makes everything appended so far durable (useful in relaxed mode).
    public func flush() async throws {
        try checkOpen()
        try await journal.writer.flush()
    }

    // MARK: - Reading

    /// The events of `stream` from `revision` on, in `direction`, at most `maxCount`.
    ///
    /// Iterating throws ``RingstoreError/Code/streamNotFound`` if the stream has no events.
    public func read(stream: String, from revision: StreamRevision = .start, direction: ReadDirection = .forwards,
                     maxCount: Int = .max) -> EventSequence {
        let start: EventSequence.Cursor = switch revision {
        case .start: .start
        case .end: .end
        case .version(let v): .at(v)
        }
        return EventSequence(start: start, maxCount: max(0, maxCount)) { [self] cursor, limit in
            try checkOpen()
            try Naming.validateStreamName(stream, allowReserved: true)
            return try readStreamPage(stream: stream, cursor: cursor, direction: direction, limit: limit)
        }
    }

    /// Every event in global (journal) order from `position` on, in `direction`, at most `maxCount`.
    public func readAll(from position: LogPosition = .start, direction: ReadDirection = .forwards,
                        maxCount: Int = .max) -> EventSequence {
        let start: EventSequence.Cursor = switch position {
        case .start: .start
        case .end: .end
        case .position(let p): .at(p)
        }
        return EventSequence(start: start, maxCount: max(0, maxCount)) { [self] cursor, limit in
            try checkOpen()
            return try readAllPage(cursor: cursor, direction: direction, limit: limit)
        }
    }

    /// The stream's last version, or nil if it has no events.
    public func currentVersion(of stream: String) throws -> UInt64? {
        try checkOpen()
        try Naming.validateStreamName(stream, allowReserved: true)
        let visible = journal.writer.acknowledged
        return journal.writer.state.withLock { s -> UInt64? in
            guard let state = s.index.streams[stream] else { return nil }
            // Versions whose records are not yet acknowledged are not visible.
            var version = state.currentVersion
            while let v = version, v >= state.ringFirstVersion,
                  state.positions[Int(v - state.ringFirstVersion)] >= visible {
                version = v == 0 ? nil : v - 1
            }
            return version
        }
    }

    private func readStreamPage(stream: String, cursor: EventSequence.Cursor, direction: ReadDirection,
                                limit: Int) throws -> (events: [RecordedEvent], next: EventSequence.Cursor?) {
        let visible = journal.writer.acknowledged
        let positions: [UInt64]? = journal.writer.state.withLock { s in
            guard let state = s.index.streams[stream] else { return nil }
            let first = state.ringFirstVersion
            // Only acknowledged records are visible; they form a prefix of the stream's positions.
            var visibleCount = state.positions.count
            while visibleCount > 0 && state.positions[visibleCount - 1] >= visible { visibleCount -= 1 }
            guard visibleCount > 0 else { return [] }
            let lastVisible = first + UInt64(visibleCount - 1)
            switch direction {
            case .forwards:
                let from: UInt64 = switch cursor {
                case .start: first
                case .end: lastVisible
                case .at(let v): max(v, first)
                }
                guard from <= lastVisible else { return [] }
                let lower = Int(from - first)
                let upper = min(visibleCount, lower + limit)
                return Array(state.positions[lower..<upper])
            case .backwards:
                let from: UInt64 = switch cursor {
                case .start: first
                case .end: lastVisible
                case .at(let v): min(v, lastVisible)
                }
                guard from >= first else { return [] }
                let upper = Int(from - first)
                let lower = max(0, upper - limit + 1)
                return Array(state.positions[lower...upper].reversed())
            }
        }
        guard let positions else {
            throw RingstoreError(.streamNotFound, "stream \"\(stream)\" has no events", stream: stream)
        }
        let events = try positions.map { position in try journal.readEvent(at: position) }
        guard let last = events.last else { return ([], nil) }
        switch direction {
        case .forwards: return (events, .at(last.version + 1))
        case .backwards: return (events, last.version == 0 ? nil : .at(last.version - 1))
        }
    }

    private func readAllPage(cursor: EventSequence.Cursor, direction: ReadDirection,
                             limit: Int) throws -> (events: [RecordedEvent], next: EventSequence.Cursor?) {
        let visible = journal.writer.acknowledged
        let positions: [UInt64] = journal.writer.state.withLock { s in
            let all = s.index.eventPositions
            // Acknowledged records form a prefix of the journal.
            let visibleCount = all.partitioningIndex { $0 >= visible }
            guard visibleCount > 0 else { return [] }
            switch direction {
            case .forwards:
                let lower: Int = switch cursor {
                case .start: 0
                case .end: visibleCount - 1
                case .at(let p): all.partitioningIndex { $0 >= p }
                }
                guard lower < visibleCount else { return [] }
                return Array(all[lower..<min(visibleCount, lower + limit)])
            case .backwards:
                let upper: Int = switch cursor {
                case .start: -1
                case .end: visibleCount - 1
                case .at(let p): min(visibleCount, all.partitioningIndex { $0 > p }) - 1
                }
                guard upper >= 0 else { return [] }
                return Array(all[max(0, upper - limit + 1)...upper].reversed())
            }
        }
        let events = try positions.map { position in try journal.readEvent(at: position) }
        guard let last = events.last else { return ([], nil) }
        switch direction {
        case .forwards: return (events, .at(last.position + 1))
        case .backwards: return (events, last.position == 0 ? nil : .at(last.position - 1))
        }
    }

    // MARK: - Status

    /// A snapshot of the journal's cursors and counters.
    public func stats() -> StoreStats {
        let writer = journal.writer
        let (reserved, checkpoint, streams, ringEvents) = writer.state.withLock {
            ($0.reserved, $0.checkpoint, $0.index.streams.count, $0.index.eventPositions.count)
        }
        return StoreStats(
            reservedPosition: reserved,
            writtenPosition: writer.written.load(ordering: .acquiring),
            durablePosition: writer.durable.load(ordering: .acquiring),
            checkpointPosition: checkpoint,
            journalCapacity: journal.ring.capacity,
            streamCount: streams,
            eventsInJournal: ringEvents,
            appendsAcknowledged: writer.acknowledger.appendCount.load(ordering: .relaxed),
            eventsAcknowledged: writer.acknowledger.eventCount.load(ordering: .relaxed),
            flushes: writer.flushCount.load(ordering: .relaxed),
            recoveredEvents: journal.recovery.eventCount,
            recoveryStopReason: journal.recovery.stopReason)
    }

    private func checkOpen() throws {
        if closed.load(ordering: .acquiring) {
            throw RingstoreError(.storeClosed, "the store at \(directory) is closed", path: directory)
        }
    }
}

extension Array {
    /// The index of the first element for which `belongsInSecondPartition` is true,
    /// given that it is false for a prefix and true for the rest (binary search).
    func partitioningIndex(where belongsInSecondPartition: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongsInSecondPartition(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
