import SystemPackage
import Synchronization

/// The ring journal as a whole: the mapped file, its header, recovery at open,
/// the group-commit writer, and reads of single records through the mapping.
final class Journal: Sendable {
    static let fileName = "journal.ring"

    let ring: RingFile
    let writer: JournalWriter
    /// What recovery found when the journal was opened (its index went to the writer).
    let recovery: JournalRecovery.Summary
    private let header: Mutex<JournalHeader>
    /// Times each step of a checkpoint (the steps from the header on are this type's).
    let checkpointObserver = CheckpointObserver()

    /// The checkpoint recorded in the journal in `directory` (0 if there is no
    /// journal yet): opening reads it before the journal itself, since the split
    /// segments are cut back to it.
    static func checkpoint(in directory: FilePath) throws -> UInt64 {
        let path = directory.appending(fileName)
        guard StorageDirectory.exists(path) else { return 0 }
        return try JournalHeader.newest(in: RingFile.readHeaderArea(at: path), path: path.string).checkpoint
    }

    /// Opens the journal in `directory`, creating it with `configuration`'s
    /// capacity if there is none, and recovers it.
    ///
    /// Order: recover; sync the ring (what recovery accepted may be only in the
    /// page cache); write the new session's header (epoch + 1) and sync it;
    /// start the writer's threads. A failure at any step throws with nothing
    /// left running: the ring is unmapped and closed as it goes out of scope.
    init(directory: FilePath, configuration: Configuration, stored: any StoredStreams) throws {
        let path = directory.appending(Self.fileName)
        var header: JournalHeader
        let ring: RingFile
        if StorageDirectory.exists(path) {
            let newest = try JournalHeader.newestSlot(in: RingFile.readHeaderArea(at: path), path: path.string)
            header = newest.header
            try header.checkRoomForAnotherSession(path: path.string, offset: newest.offset)
            ring = try RingFile.open(at: path, capacity: header.capacity)
        } else {
            header = JournalHeader(sequence: 0, capacity: configuration.journalCapacity, checkpoint: 0,
                                   epoch: 0, closedCleanly: true, endAtClose: 0)
            ring = try RingFile.create(at: path, capacity: configuration.journalCapacity, header: header.encoded())
        }
        var outcome = JournalRecovery.scan(ring, checkpoint: header.checkpoint, headerEpoch: header.epoch,
                                           keepingAppends: configuration.idempotencyWindow)
        // Before the ring's free space leaves the page cache below: the appends it
        // still holds from before the checkpoint refill the window too.
        let window = JournalHistory.window(capacity: configuration.idempotencyWindow, ring: ring,
                                           checkpoint: header.checkpoint, end: outcome.end, recovered: outcome.recentAppends)
        outcome.recentAppends = []
        // A new session: an epoch above every one in the ring (the header's own may
        // be older if its newest slot was damaged), written durably before any record.
        // No overflow: the header's epoch is below UInt32.max - 1 and recovery accepts
        // records at most one session past it.
        header.sequence += 1
        header.epoch = max(header.epoch, outcome.lastEpoch) + 1
        header.closedCleanly = false
        let ringSync = RingSync(ring: ring, epoch: header.epoch, end: outcome.end)

        // Whatever recovery accepted may still be only in the page cache (a killed
        // process leaves its unsynced writes there): make it durable before anyone
        // is told about it.
        try ringSync.sync()
        // What lies ahead of the end is an earlier lap's, to be overwritten (see `RingFile.dropCache`).
        ring.dropCache(from: outcome.end, to: header.checkpoint + ring.capacity)
        ring.releasePages(from: outcome.end, to: header.checkpoint + ring.capacity)
        try ringSync.writeHeader(header.encoded(), at: header.slotOffset)

        let mode: JournalWriter.Mode = switch configuration.durability {
        case .durable(let delay): .durable(maxFlushDelayNanoseconds: delay.nanoseconds)
        case .relaxed(let interval): .relaxed(flushIntervalNanoseconds: interval.nanoseconds)
        }
        self.ring = ring
        self.recovery = outcome.summary
        self.header = Mutex(header)
        self.writer = try JournalWriter(
            ringSync: ringSync, mode: mode, journalFullWait: configuration.journalFullWait,
            window: window, recovered: outcome.index,
            checkpoint: header.checkpoint, stored: stored)
    }

    /// Records a clean close in the header (after the writer and the splitter have stopped).
    func recordCleanClose() throws {
        if let failure = writer.failure { throw failure }
        let end = writer.durable
        let checkpoint = writer.state.withLock { $0.checkpoint }
        let encoded = header.withLock { h in
            h.sequence += 1
            h.checkpoint = checkpoint
            h.closedCleanly = true
            h.endAtClose = end
            return (h.encoded(), h.slotOffset)
        }
        try writer.writeHeader(encoded.0, at: encoded.1)
    }

    /// Declares every record before `position` copied into durable stream files:
    /// writes the new checkpoint to the header (durably) and only then lets the
    /// writer reuse that ring space and drops those records from the index.
    ///
    /// `position` must be a record boundary at or before the durable cursor;
    /// the checkpoint never moves backwards.
    ///
    /// `streams` must include every stream with records before `position` that
    /// are still indexed (the splitter passes the streams it split since the
    /// last checkpoint); only their index entries are visited.
    func advanceCheckpoint(to position: UInt64, streams: some Collection<String>) throws {
        let durable = writer.durable
        precondition(position <= durable, "the checkpoint cannot pass the durable cursor")
        // The in-memory header changes only once the new one is written, so that a
        // failed write is retried as a whole by the next call.
        let next: (header: JournalHeader, previous: UInt64)? = header.withLock { h in
            guard position > h.checkpoint else { return nil }
            var next = h
            next.sequence += 1
            next.checkpoint = position
            return (next, h.checkpoint)
        }
        guard let next else { return }
        try checkpointObserver.timed(.header) { try writer.writeHeader(next.header.encoded(), at: next.header.slotOffset) }
        header.withLock { $0 = next.header }
        checkpointObserver.timed(.release) { writer.releaseSpace(before: position, streams: streams) }
        checkpointObserver.timed(.pageCache) {
            ring.releasePages(from: next.previous, to: position)
            ring.dropCache(from: next.previous, to: position)
        }
    }

    /// The event whose record starts at `position`, read through the mapping.
    ///
    /// Throws ``RingstoreError/Code/corruptData`` naming the journal and position
    /// if the bytes there are not that record (damage, or reuse of the space).
    func readEvent(at position: UInt64) throws -> RecordedEvent {
        let physical = ring.physical(position)
        let toEnd = Int(ring.bytesToEnd(from: position))
        let result: Result<RecordedEvent, RingstoreError> = ring.withMappedBytes(physical: physical, count: toEnd) { bytes in
            switch JournalRecord.inspect(bytes, expectedPosition: position) {
            case .event(let header):
                return .success(JournalRecord.decodeEvent(bytes, header))
            case .padding:
                return .failure(RingstoreError(.corruptData, "journal position \(position) holds padding, not an event",
                                               path: ring.file.path.string, offset: RingFile.headerAreaSize + physical))
            case .invalid(let reason):
                return .failure(RingstoreError(.corruptData, "journal record at position \(position) is damaged: \(reason)",
                                               path: ring.file.path.string, offset: RingFile.headerAreaSize + physical))
            }
        }
        return try result.get()
    }
}
