import Logging
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
    /// Where split events are: stream files and split segments.
    let split: SplitStore
    var streams: StreamDirectory { split.directory }
    var catalog: StreamCatalog { split.catalog }
    let globalIndex: GlobalIndex
    let splitter: Splitter
    /// Current metadata of recently used streams (see ``StreamMetadataCache``).
    let metadataCache = StreamMetadataCache()
    /// The memory `$all` readers' windows of decoded blocks share (see ``AllReadWindow``).
    let allReadBudget: DecodedBlockBudget
    /// Logging and metrics (see ``StoreObservability``).
    let observability: StoreObservability
    /// Publishes metrics about once a second while the store is open.
    let sampler = Mutex<Task<Void, Never>?>(nil)
    /// Tests only: reached by each `$all` page read right after it has loaded the
    /// acknowledged and split cursors, before it looks at the ring or the global
    /// index (so a test can make a checkpoint or an append happen in between).
    let allPageCursorsLoaded = TestHook()
    /// Tests only: reached by a metadata write (metadata, delete, tombstone) once
    /// it is acknowledged, before the metadata cache learns of it.
    let metadataWriteAcknowledged = TestHook()
    private let lock: StoreLock
    /// False when the lock was handed in by the caller (the offline maintenance
    /// tool, which keeps holding it after the store closes): then closing leaves it held.
    private let ownsLock: Bool
    private let closed = Atomic<Bool>(false)
    /// The end of the one close (or abandon), for later callers of ``close()``.
    private let closing = CloseCompletion()
    /// Tests only: when not 0, the time (nanoseconds since 1970) from which
    /// `maxAge` is measured back, instead of the wall clock at each read.
    let maxAgeNowForTesting = Atomic<Int64>(0)

    private init(directory: FilePath, configuration: Configuration, journal: Journal, split: SplitStore,
                 globalIndex: GlobalIndex, lock: StoreLock, ownsLock: Bool, logger: Logger) throws {
        self.directory = directory.string
        self.observability = StoreObservability(directory: directory.string, logger: logger)
        self.configuration = configuration
        self.allReadBudget = DecodedBlockBudget(limit: configuration.allReadWindowBytes, sharedWith: split.directory.blockCache)
        self.journal = journal
        self.split = split
        self.globalIndex = globalIndex
        self.lock = lock
        self.ownsLock = ownsLock
        self.splitter = try Splitter(journal: journal, split: split, globalIndex: globalIndex, compress: configuration.compression,
                                     moverPolicy: .init(budgetBytes: configuration.effectiveSplitSegmentBudget),
                                     pacing: configuration.checkpointPacing)
    }

    /// Opens the store in `path`, creating the directory (but not its parents)
    /// and the journal if they do not exist, and recovering after a crash.
    ///
    /// `logger` receives a line when the store opens and closes and warnings
    /// when the journal fills up or the splitter fails; nothing per event.
    ///
    /// An open that fails part-way gives back everything it had taken: the
    /// threads it started are stopped (and have exited), the journal's mapping
    /// and the files it opened are closed, and the lock is released.
    public static func open(at path: String, configuration: Configuration = Configuration(),
                            logger: Logger = Logger(label: "ringstore")) async throws -> EventStore {
        try await open(at: path, configuration: configuration, logger: logger, heldLock: nil)
    }

    /// ``open(at:configuration:logger:)`` with, optionally, the store's lock
    /// already taken by the caller (`heldLock`), who keeps it after `close()`.
    ///
    /// `compactionSettled`: the holder of `heldLock` already finished or undid an
    /// interrupted compaction under that lock (``CompactionSwitch/finishIfPending(in:)``)
    /// and may since have written into `compact.new/` (an offline compaction's
    /// temporary files): that folder is left alone. `preparedSegments`: what a walk
    /// over the split segments under that lock learnt already (``SplitSegments/Prepared``).
    static func open(at path: String, configuration: Configuration, logger: Logger,
                     heldLock: StoreLock?, compactionSettled: Bool = false,
                     preparedSegments: SplitSegments.Prepared? = nil) async throws -> EventStore {
        let opening = monotonicNanoseconds()
        try configuration.validate()
        MallocTuning.applyOnce()
        let directory = FilePath(path)
        let parent = directory.removingLastComponent()
        if !StorageDirectory.isDirectory(directory) {
            guard parent.isEmpty || StorageDirectory.isDirectory(parent) else {
                throw RingstoreError(.invalidArgument, "cannot create store \(path): its parent folder \(parent) does not exist", path: path)
            }
            try StorageDirectory.create(directory)
            // The store's own name must survive a power cut before anything in it counts.
            try StorageDirectory.sync(parent.isEmpty ? FilePath(".") : parent)
        }
        let lock = try heldLock ?? StoreLock(directory: directory)
        let ownsLock = heldLock == nil
        // Once the journal is open its writer's threads run (and hold it, and so the
        // ring's mapping and descriptor): a later failure must stop them.
        var openedJournal: Journal?
        do {
            // An offline compaction interrupted after its commit point is finished
            // (one before it rolled back) before anything looks at the files it swaps.
            if !(compactionSettled && heldLock != nil) { try CompactionSwitch.finishIfPending(in: directory) }
            let catalog = try StreamCatalog(directory: directory)
            // Segment entries from the checkpoint on are split again as the splitter replays the journal.
            let segments = try SplitSegments(root: directory, checkpoint: try Journal.checkpoint(in: directory),
                                             segmentBytes: max(256 << 10, configuration.effectiveSplitSegmentBudget / 8),
                                             prepared: heldLock == nil ? nil : preparedSegments)
            // A snapshot of the bucket heads each journal's worth of growth: what an open walks of them stays about a journal's.
            let buckets = try StreamBuckets(streams: directory.appending(StreamNaming.folder), snapshotGrowth: configuration.journalCapacity)
            let streams = try StreamDirectory(root: directory, maxOpenFiles: configuration.maxOpenFiles,
                                              blockCacheBytes: configuration.blockCacheBytes,
                                              segmentsHoldFrom: { stream in
                                                  // A bucket chain holds a stream's history from version 0.
                                                  guard let number = catalog.number(of: stream) else { return .max }
                                                  if buckets.head(of: number) != nil { return 0 }
                                                  return segments.head(of: number)?.oldestVersion ?? .max
                                              },
                                              commitsFileSystemJournal: configuration.commitsFileSystemJournal)
            let split = try SplitStore(directory: streams, segments: segments, buckets: buckets,
                                       movesIntoBuckets: configuration.streamBuckets, catalog: catalog,
                                       compress: configuration.compression)
            let journal = try Journal(directory: directory, configuration: configuration, stored: split)
            openedJournal = journal
            streams.journalHoldsWholeStream.withLock {
                // Weak: the journal's writer holds the split store, which holds this directory.
                $0 = { [weak journal] stream in journal?.holdsWholeStream(stream) ?? false }
            }
            let globalIndex = try GlobalIndex(directory: directory)
            // The names of `streams/`, the catalog and the global index (created above
            // if new) must be durable before a checkpoint relies on them: a file's
            // `fdatasync` does not cover its name.
            try StorageDirectory.sync(directory)
            // Entries from the checkpoint on are derived again as the splitter replays the journal.
            let checkpoint = journal.checkpoint
            try globalIndex.truncate(from: checkpoint)
            streams.replayFrom.store(checkpoint, ordering: .releasing)
            let store = try EventStore(directory: directory, configuration: configuration, journal: journal, split: split,
                                       globalIndex: globalIndex, lock: lock, ownsLock: ownsLock, logger: logger)
            do {
                try store.startEnforcingDeletions()
            } catch {
                await store.abandon()  // the splitter's threads are running already
                throw error
            }
            store.startObserving(openedIn: monotonicNanoseconds() - opening)
            return store
        } catch {
            // Nothing was appended, so closing writes nothing; it returns once the
            // threads have exited. (After `abandon` it has nothing left to do.)
            await openedJournal?.writer.close()
            if ownsLock { lock.release() }
            throw error
        }
    }

    /// Flushes everything, copies it into stream files, records a clean close,
    /// and releases the lock. Appends still in flight are acknowledged first;
    /// later calls fail with ``RingstoreError/Code/storeClosed``. A second
    /// close returns once the first has finished (throwing what it threw): a
    /// command whose work failed because a signal handler began closing the
    /// store must not exit before that close is done.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else {
            try await closing.waitUntilDone()
            return
        }
        do {
            try await performClose()
            closing.finish(nil)
        } catch {
            closing.finish(error)
            throw error
        }
    }

    private func performClose() async throws {
        defer { if ownsLock { lock.release() } }
        journal.writer.acknowledger.changes.notify()  // subscribers see the store closing and end
        await journal.writer.close()
        await splitter.stop()
        // The stream files' descriptors go now, not when the last reference to the
        // store does (a program may keep a closed store, or open many in turn). A
        // reader still holding one finishes with it; nothing is written after this.
        split.directory.closeAll()
        stopObserving()
        if let failure = splitter.failure { throw failure }
        try journal.recordCleanClose()
    }

    /// Tests only: stops the store the way a crash would — no final split, no
    /// checkpoint, no clean-close mark — and releases the lock. What the
    /// flusher had staged is written (as a killed process's writes survive in
    /// the page cache).
    func abandonForTesting() async { await abandon() }

    /// Stops the threads without a final split or checkpoint (a crash, as far
    /// as the files are concerned) and releases the lock.
    func abandon() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await splitter.abandon()
        await journal.writer.close()
        split.directory.closeAll()
        sampler.withLock { $0?.cancel() }
        if ownsLock { lock.release() }
        closing.finish(nil)
    }

    // MARK: - Appending

    /// Appends `events` to `stream` atomically and contiguously, and returns once
    /// they are durable (in relaxed mode: written).
    ///
    /// - Throws: ``RingstoreError`` with ``RingstoreError/Code/wrongExpectedVersion``
    ///   (carrying ``RingstoreError/currentVersion``) when the stream is not as
    ///   expected; `.invalidStreamName`, `.eventTooLarge`, `.appendTooLarge` or
    ///   `.invalidArgument` for bad input; `.journalFull` when the ring stayed full
    ///   past `journalFullWait`; `.ioError` when the journal write or flush for
    ///   this append failed (not acknowledged, but the events may still be stored:
    ///   retry with the same event IDs); `.storeFailed` once the store cannot go on
    ///   without being reopened.
    ///
    /// Sending the same event IDs again at the same expected version (a retry)
    /// succeeds and returns the first append's result without writing anything.
    @discardableResult
    public func append(to stream: String, expectedVersion: ExpectedVersion = .any, events: [EventData]) async throws -> AppendResult {
        try checkOpen()
        return try await appendPrepared(prepare(stream: stream, expectedVersion: expectedVersion, events: events))
    }

    /// Appends a validated append (user or system stream).
    func appendPrepared(_ prepared: JournalWriter.PreparedAppend) async throws -> AppendResult {
        // A journal-full error says why the ring is not draining, if the splitter knows
        // (asked when the wait ends: its failure stays reported until it has recovered).
        try await journal.writer.append(prepared, whyFull: { splitter.whyCheckpointsWait })
    }

    /// Validates an append; system streams (`$…`) only with `allowReserved`.
    func prepare(stream: String, expectedVersion: ExpectedVersion, events: [EventData],
                 allowReserved: Bool = false) throws -> JournalWriter.PreparedAppend {
        try NameRules.validateStreamName(stream, allowReserved: allowReserved)
        guard !events.isEmpty else {
            throw RingstoreError(.invalidArgument, "an append needs at least one event", stream: stream)
        }
        let streamCount = stream.utf8.count
        var total = 0
        for event in events {
            try NameRules.validateEventType(event.type, stream: stream)
            let size = event.data.count + event.metadata.count
            guard size <= configuration.maxEventSize else {
                throw RingstoreError(.eventTooLarge,
                                     "event \(event.id) of type \(event.type) has \(size) bytes of data and metadata; the limit (maxEventSize) is \(configuration.maxEventSize)",
                                     stream: stream)
            }
            let length = JournalRecord.eventLength(streamCount: streamCount, typeCount: event.type.utf8.count,
                                                   metadataCount: event.metadata.count, dataCount: event.data.count)
            total += length
        }
        let limit = Int(journal.ring.capacity / 2)
        guard total <= limit else {
            throw RingstoreError(.appendTooLarge,
                                 "an append of \(events.count) events needs \(total) bytes of journal; one append may use at most half the journal (\(limit) bytes): split it or raise journalCapacity",
                                 stream: stream)
        }
        return .init(stream: stream, expected: expectedVersion, events: events, totalLength: total)
    }

    /// Makes everything appended so far durable (useful in relaxed mode).
    public func flush() async throws {
        try checkOpen()
        try await journal.writer.flush()
    }

    /// True once `close()` has begun.
    var isClosed: Bool { closed.load(ordering: .acquiring) }

    func checkOpen() throws {
        if closed.load(ordering: .acquiring) {
            throw RingstoreError(.storeClosed, "the store at \(directory) is closed", path: directory)
        }
    }
}

extension Array {
    /// The index of the first element for which `belongsInSecondPartition` is true,
    /// given that it is false for a prefix and true for the rest (binary search).
    /// (`package`: the bench's stall report searches its spans with it.)
    package func partitioningIndex(where belongsInSecondPartition: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongsInSecondPartition(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
