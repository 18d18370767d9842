import Glibc
/// How a store is opened. Every field has a default suited to a small ARM box.
public struct Configuration: Sendable, Hashable {
    /// When an append is acknowledged.
    public enum Durability: Sendable, Hashable {
        /// Acknowledge an append only after the flush that covers it. One flush
        /// covers every append waiting for it: the writer flushes as soon as its
        /// previous flush has ended, and no append waits longer than
        /// `maxFlushDelay` for its flush to start (the bound that matters when the
        /// writer paces its flushes on a device out of writes).
        case durable(maxFlushDelay: Duration)
        /// Acknowledge an append once it is in the journal file's page cache (it
        /// survives the process being killed) and flush every `flushInterval` and
        /// on close. A power loss or kernel crash can lose up to `flushInterval`
        /// of acknowledged appends.
        case relaxed(flushInterval: Duration)

        /// Durable; no append waits more than 2 ms for its flush to start.
        public static let durable = Durability.durable(maxFlushDelay: .milliseconds(2))
        /// Relaxed, flushing every 5 s.
        public static let relaxed = Durability.relaxed(flushInterval: .seconds(5))
    }

    /// Size of the ring journal in bytes (default 64 MiB). Fixed when the store is
    /// created: reopening uses the size on disk.
    public var journalCapacity: UInt64 = 64 << 20
    /// When appends are acknowledged (default ``Durability/durable``).
    public var durability: Durability = .durable
    /// Largest `data` + `metadata` of one event, in bytes (default 1 MiB).
    public var maxEventSize: Int = 1 << 20
    /// How long an append waits for ring space while the journal is full before
    /// failing with ``RingstoreError/Code/journalFull`` (default 5 s).
    public var journalFullWait: Duration = .seconds(5)
    /// How long a reader waits for its stream to catch up before failing with
    /// ``RingstoreError/Code/readerTimeout`` (default 5 s).
    public var readerWait: Duration = .seconds(5)
    /// Most stream files kept open at once, counting each stream's index file
    /// (a stream past 16 to 63 blocks has one) as a file. The default is half the
    /// process's open-file limit (the soft `RLIMIT_NOFILE`), at least 256 and at
    /// most 65,536: 512 under the usual soft limit of 1,024, more for a process
    /// that raised its limit (the `ringstore` command raises its soft limit to
    /// the hard one). Why so many: the splitter (at each checkpoint) and `$all`
    /// readers visit the streams round-robin, and with more streams than open
    /// files every visit reopens (and later closes) a file, three system calls
    /// that cost more than writing or reading the block. The other half of the
    /// limit is left to the rest of the process: running out of descriptors
    /// crashes parts of the runtime (libdispatch), and should the store meet
    /// `EMFILE` anyway it closes half its files and retries.
    public var maxOpenFiles: Int = Configuration.defaultMaxOpenFiles
    /// Compress stream-file blocks with LZ4 (default on).
    public var compression: Bool = true
    /// Spread the processor time of writing a checkpoint's blocks over time
    /// (default off): the splitter pauses after each millisecond of that work
    /// for about as long, while the ring has ample room, so that appends do not
    /// wait for a processor behind it. It never pauses on close or once an
    /// append has waited for ring space. Off by default: measured, it lowered
    /// the reader wait but not the append latency, and 100-event appends at
    /// full load met waits for ring space more often with it (see docs/ARCHITECTURE.md).
    public var checkpointPacing: Bool = false
    /// How many recent appends are remembered so that a retry with
    /// ``ExpectedVersion/any`` (or `.streamExists`) is recognised and not written
    /// twice (default 20,000). Rebuilt from the journal when the store opens:
    /// after a restart it covers the last this-many appends among those within
    /// the journal's last `journalCapacity` bytes.
    /// Retries with ``ExpectedVersion/exact(_:)`` or ``ExpectedVersion/noStream``
    /// are recognised whatever their age.
    public var idempotencyWindow: Int = 20_000
    /// Memory for decoded stream-file blocks shared by readers of streams
    /// (default 16 MiB; 0 turns the cache off). `$all` readers keep their
    /// decoded blocks apart, within the larger of this and half of
    /// ``journalCapacity`` for all of them together: a block's events are spread
    /// over one checkpoint's span of the global order (at most half the ring),
    /// and with that much each block is decoded once per pass.
    public var blockCacheBytes: Int = 16 << 20

    /// What `$all` readers' windows of decoded blocks may hold together (see ``blockCacheBytes``).
    var allReadWindowBytes: Int { max(blockCacheBytes, Int(clamping: journalCapacity / 2)) }
    /// Bytes the split segments may hold before the oldest is moved into stream
    /// files (default: four times ``journalCapacity``). Streams without a block's
    /// worth of new events are split into shared segments, written sequentially,
    /// rather than into their own files: on flash, thousands of small writes per
    /// checkpoint would stall the journal. A larger budget moves each stream less
    /// often (larger blocks, fewer random writes) at the cost of disk space.
    /// The segments stay within about three times the budget: past that, once
    /// a checkpoint covers them, checkpoints wait for the mover, and with them
    /// appends (for ring space, up to ``journalFullWait``), so a device that
    /// cannot move the segments as fast as they fill slows the ingest rather
    /// than running out of space.
    public var splitSegmentBudget: UInt64? = nil

    /// Whether small streams move from the split segments into shared bucket
    /// files (`streams/buckets/`, 64 of them) rather than into files of their
    /// own, until their moved history reaches 1 MiB. On flash this turns a
    /// move per stream (a write, and a file created on the first) into a few
    /// large sequential writes for many streams. On by default. Off, every
    /// stream moves into a file of its own; a store that has bucket files
    /// reads them whatever this says. `ringstore-admin compact` follows it too:
    /// on, small streams go into new bucket files; off, every stream gets a file.
    public var streamBuckets: Bool = true

    /// The split segments' budget in effect (see ``splitSegmentBudget``).
    var effectiveSplitSegmentBudget: UInt64 { splitSegmentBudget ?? journalCapacity * 4 }

    /// How the segment mover makes a batch of stream files durable: true, one
    /// commit of the file system's journal (``FileSystemCommit``); false,
    /// `syncfs`; nil (the default), the first where the store's file system has
    /// such a journal (ext4). Not public: tests set it to run either path
    /// under the power-loss simulation.
    var commitsFileSystemJournal: Bool? = nil

    public init() {}

    /// Half the soft open-file limit, clamped to 256...65,536 (see ``maxOpenFiles``).
    public static var defaultMaxOpenFiles: Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 256 }
        return defaultMaxOpenFiles(softLimit: UInt64(limit.rlim_cur))
    }

    static func defaultMaxOpenFiles(softLimit: UInt64) -> Int {
        Int(min(max(softLimit / 2, 256), 65_536))  // RLIM_INFINITY is the largest value: 65,536
    }

    /// Checks the values against each other; throws naming the first bad one.
    func validate() throws {
        guard journalCapacity >= 64 << 10, journalCapacity % 4096 == 0 else {
            throw RingstoreError(.invalidArgument, "journalCapacity must be a multiple of 4096 and at least 64 KiB (got \(journalCapacity))")
        }
        guard maxEventSize > 0, UInt64(maxEventSize) <= journalCapacity / 4 else {
            throw RingstoreError(.invalidArgument, "maxEventSize must be between 1 and journalCapacity/4 = \(journalCapacity / 4) bytes (got \(maxEventSize))")
        }
        guard idempotencyWindow >= 0 else {
            throw RingstoreError(.invalidArgument, "idempotencyWindow must not be negative (got \(idempotencyWindow))")
        }
        guard blockCacheBytes >= 0 else {
            throw RingstoreError(.invalidArgument, "blockCacheBytes must not be negative (got \(blockCacheBytes))")
        }
        if let budget = splitSegmentBudget, budget < 64 << 10 {
            throw RingstoreError(.invalidArgument, "splitSegmentBudget must be at least 64 KiB (got \(budget))")
        }
        guard maxOpenFiles >= 4 else {
            throw RingstoreError(.invalidArgument, "maxOpenFiles must be at least 4 (got \(maxOpenFiles))")
        }
        switch durability {
        case .durable(let delay) where delay < .zero:
            throw RingstoreError(.invalidArgument, "maxFlushDelay must not be negative (got \(delay))")
        case .relaxed(let interval) where interval <= .zero:
            throw RingstoreError(.invalidArgument, "flushInterval must be positive (got \(interval))")
        default: break
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? Int64.max : ns + attoseconds / 1_000_000_000
    }

    /// The duration in seconds, for reports (`package`: the bench and the command line print them too).
    package var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
