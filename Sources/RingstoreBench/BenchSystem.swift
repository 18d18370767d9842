import Ringstore

/// A store the workload runs against: Ringstore itself, or a peer such as SQLite.
///
/// Every call may come from many tasks at once. An append must check the expected
/// version for real and be atomic, as `EventStore.append` is.
public protocol BenchSystem: Sendable {
    /// The name in the report: `"ringstore"` or `"sqlite"`.
    var name: String { get }
    /// Appends `events` to `stream`, which must be at `expectedVersion` (nil: the stream must not exist).
    func append(stream: String, expectedVersion: UInt64?, events: [EventData]) async throws
    /// The newest version of `stream` a reader sees now (nil: no events).
    func latestVersion(of stream: String) async throws -> UInt64?
    /// Counters for the report, read before and after the run (the journal's
    /// sync times count from the previous read, so the second covers the run).
    func counters() async throws -> SystemCounters
    /// A few words for the progress line (ring use, split lag, …).
    func progressDetail() -> String
    /// Waits until background work caused by the appends is done (Ringstore: the
    /// split of every appended event), so that bytes written cover it.
    func settle() async throws
    /// Reads `stream` from its start; returns how many events it has.
    func readStream(_ stream: String) async throws -> Int
    /// Reads every event in global order; returns how many there are.
    func readAll() async throws -> Int
    /// Releases the store.
    func close() async throws
    /// Called right before the measured run, after any warm-up has settled:
    /// syncs the system's file system, so that the writeback of what the
    /// warm-up created (the metadata of its files, which the kernel sends 30 s
    /// later) does not land in the measured run, and starts again the
    /// counters that keep a maximum since the open (Ringstore: the longest checkpoint).
    func startMeasuring() throws
}

/// What a system has done so far, as counted by itself.
public struct SystemCounters: Sendable {
    /// Flushes to stable storage (`fdatasync`/`fsync`).
    public var flushes: UInt64
    /// Bytes the system wrote into its files (see the README for what each system counts).
    public var bytesWritten: UInt64
    /// Appends that waited because the journal was full (Ringstore; nil for a peer without one).
    public var journalFullWaits: UInt64?
    /// The longest checkpoint since the store opened, in milliseconds (Ringstore).
    public var longestCheckpointMs: Double?
    /// How long the journal's syncs took since the previous `counters()` (Ringstore,
    /// when ``JournalSyncTimes`` collects them; nil otherwise).
    public var journalSyncs: LatencyRecorder?
    /// The slow journal syncs and the checkpoint steps since the previous
    /// `counters()` (Ringstore, when ``JournalSyncTimes`` collects them), for the ``StallReport``.
    public var spans: [TimedSpan]?

    public init(flushes: UInt64, bytesWritten: UInt64, journalFullWaits: UInt64? = nil, longestCheckpointMs: Double? = nil,
                journalSyncs: LatencyRecorder? = nil, spans: [TimedSpan]? = nil) {
        self.flushes = flushes
        self.bytesWritten = bytesWritten
        self.journalFullWaits = journalFullWaits
        self.longestCheckpointMs = longestCheckpointMs
        self.journalSyncs = journalSyncs
        self.spans = spans
    }
}
