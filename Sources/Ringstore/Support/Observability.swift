import CoreMetrics
import Logging
import Synchronization

/// A store's logging and metrics (swift-log, swift-metrics), kept off the hot path.
///
/// Nothing is logged or measured per event or per append. The flusher times
/// each flush (one clock read and one timer call per flush), the checkpointer
/// each step of a checkpoint (``CheckpointStep``); reader waits are counted as
/// they end (they are rare). Everything else is sampled: about once
/// a second, and at close, ``publish(_:)`` turns the store's own counters
/// (``StoreStats``) into counter increments and gauge values, and logs a
/// warning when appends waited for ring space (at most one every 30 s, with
/// the count since the last) or the splitter reports a new failure.
///
/// Logging: `.info` when a store opens (with what recovery found) and closes,
/// `.warning` for journal-full waits and splitter failures, nothing else.
/// Metrics carry the dimension `store` (the store directory's last component,
/// which is the store's name under a ``StoreManager``).
final class StoreObservability: Sendable {
    let logger: Logger
    let storeName: String

    let appends: Counter
    let eventsAppended: Counter
    let flushes: Counter
    let flushDuration: CoreMetrics.Timer
    let eventsSplit: Counter
    let checkpoints: Counter
    let splitLag: Gauge
    let ringUsed: Gauge
    let splitSegmentBytes: Gauge
    let bucketFileBytes: Gauge
    let splitSegmentHolds: Counter
    let journalFullWaits: Counter
    let readerWaits: Counter
    let readerWaitDuration: CoreMetrics.Timer
    let checkpointStepDurations: [CheckpointStep: CoreMetrics.Timer]

    /// The counters as last published, to publish increments.
    private struct Published: ~Copyable {
        var appends: UInt64 = 0
        var events: UInt64 = 0
        var flushes: UInt64 = 0
        var eventsSplit: UInt64 = 0
        var checkpoints: UInt64 = 0
        var journalFullWaits: UInt64 = 0
        var splitSegmentHolds: UInt64 = 0
        var splitterFailure: String?
        /// Journal-full waits not yet reported in a warning, and when the last one went out.
        var unreportedWaits: UInt64 = 0
        var lastWaitWarning: Int64?
    }
    /// At most one journal-full warning per this interval.
    static let warningInterval: Int64 = 30_000_000_000
    private let published = Mutex(Published())

    init(directory: String, logger: Logger) {
        let name = directory.split(separator: "/").last.map(String.init) ?? directory
        var logger = logger
        logger[metadataKey: "store"] = "\(directory)"
        self.logger = logger
        self.storeName = name
        let dimensions = [("store", name)]
        appends = Counter(label: "ringstore_appends_total", dimensions: dimensions)
        eventsAppended = Counter(label: "ringstore_events_appended_total", dimensions: dimensions)
        flushes = Counter(label: "ringstore_flushes_total", dimensions: dimensions)
        flushDuration = CoreMetrics.Timer(label: "ringstore_flush_duration", dimensions: dimensions)
        eventsSplit = Counter(label: "ringstore_events_split_total", dimensions: dimensions)
        checkpoints = Counter(label: "ringstore_checkpoints_total", dimensions: dimensions)
        splitLag = Gauge(label: "ringstore_split_lag_bytes", dimensions: dimensions)
        ringUsed = Gauge(label: "ringstore_ring_used_ratio", dimensions: dimensions)
        splitSegmentBytes = Gauge(label: "ringstore_split_segment_bytes", dimensions: dimensions)
        bucketFileBytes = Gauge(label: "ringstore_bucket_file_bytes", dimensions: dimensions)
        splitSegmentHolds = Counter(label: "ringstore_split_segment_holds_total", dimensions: dimensions)
        journalFullWaits = Counter(label: "ringstore_journal_full_waits_total", dimensions: dimensions)
        readerWaits = Counter(label: "ringstore_reader_waits_total", dimensions: dimensions)
        readerWaitDuration = CoreMetrics.Timer(label: "ringstore_reader_wait_duration", dimensions: dimensions)
        checkpointStepDurations = Dictionary(uniqueKeysWithValues: CheckpointStep.allCases.map { step in
            (step, CoreMetrics.Timer(label: "ringstore_checkpoint_step_duration", dimensions: dimensions + [("step", step.rawValue)]))
        })
    }

    /// Publishes one sample of the store's counters and cursors; warns about
    /// journal-full waits and new splitter failures since the last sample.
    /// `segmentsHold`: checkpoints wait for the segment mover now (the
    /// journal-full warning then says so).
    func publish(_ stats: StoreStats, journalFullWaits waits: UInt64, splitterFailure: RingstoreError?,
                 segmentsHold: Bool = false) {
        let now = monotonicNanoseconds()
        let (deltas, newFailure, waitsToReport) = published.withLock { p -> ([UInt64], Bool, UInt64) in
            func advance(_ value: UInt64, _ last: inout UInt64) -> UInt64 {
                defer { last = max(last, value) }
                return value > last ? value - last : 0
            }
            let deltas = [advance(stats.appendsAcknowledged, &p.appends), advance(stats.eventsAcknowledged, &p.events),
                          advance(stats.flushes, &p.flushes), advance(stats.eventsSplit, &p.eventsSplit),
                          advance(UInt64(stats.checkpoints), &p.checkpoints), advance(waits, &p.journalFullWaits),
                          advance(stats.splitSegmentHolds, &p.splitSegmentHolds)]
            let failure = splitterFailure?.message
            defer { p.splitterFailure = failure }
            // Warn at the first wait, then at most once per interval (with the count since).
            var report: UInt64 = 0
            p.unreportedWaits += deltas[5]
            if p.unreportedWaits > 0, p.lastWaitWarning.map({ now - $0 >= Self.warningInterval }) ?? true {
                report = p.unreportedWaits
                p.unreportedWaits = 0
                p.lastWaitWarning = now
            }
            return (deltas, failure != nil && failure != p.splitterFailure, report)
        }
        for (counter, delta) in zip([appends, eventsAppended, flushes, eventsSplit, checkpoints, journalFullWaits, splitSegmentHolds],
                                    deltas) where delta > 0 {
            counter.increment(by: Int64(clamping: delta))
        }
        splitLag.record(Double(stats.splitLag))
        let used = Double(stats.journalBytesInUse) / Double(max(1, stats.journalCapacity))
        ringUsed.record(used)
        splitSegmentBytes.record(Double(stats.splitSegmentBytes))
        bucketFileBytes.record(Double(stats.bucketFileBytes))
        if waitsToReport > 0 {
            logger.warning("journal full: appends waited for ring space", metadata: [
                "appendsWaited": "\(waitsToReport)", "ringUsed": "\(Int(used * 100))%", "splitLagBytes": "\(stats.splitLag)",
                "hint": segmentsHold
                    ? "checkpoints wait for the segment mover: the split segments (\(stats.splitSegmentBytes >> 20) MiB) are past three times splitSegmentBudget; the device cannot move them into stream files as fast as they fill"
                    : "the splitter is not keeping up with the stream files; a larger journal absorbs longer bursts",
            ])
        }
        if newFailure, let splitterFailure {
            logger.warning("splitter failed; retrying every 100 ms (nothing is lost while the checkpoint waits)", metadata: [
                "error": "\(splitterFailure.message)", "path": "\(splitterFailure.path ?? "")",
            ])
        }
    }

    /// A stream read waited for the splitter for `duration`.
    func readerWaited(_ duration: Duration) {
        readerWaits.increment()
        readerWaitDuration.recordNanoseconds(duration.nanoseconds)
    }
}

/// Receives the duration of each journal flush on the flusher thread. The
/// store installs its timer at open; until then flushes are not timed.
final class FlushObserver: Sendable {
    private let timer = Mutex<CoreMetrics.Timer?>(nil)

    func install(_ newTimer: CoreMetrics.Timer) { timer.withLock { $0 = newTimer } }

    func flushed(nanoseconds: Int64) {
        timer.withLock { $0 }?.recordNanoseconds(nanoseconds)
    }
}

/// The steps of a checkpoint, in their order, each timed with the store's
/// `ringstore_checkpoint_step_duration` timer (dimension `step`: the raw value).
///
/// Why by step: a checkpoint's total duration says that it was slow, not what
/// was; and what an append waits for during one depends on the step (a sync
/// competes with the journal's in the device, the release for the writer's
/// lock). The bench's stall report lines slow appends up against them.
enum CheckpointStep: String, CaseIterable, Sendable {
    /// Relaxed mode: the journal synced up to the split (durable mode: nothing to do).
    case journalSync = "journal_sync"
    /// The stream files written since the last checkpoint, and their folders.
    case streamFiles = "stream_files"
    /// The split segments.
    case segments
    /// The stream catalog.
    case catalog
    /// The global index.
    case globalIndex = "global_index"
    /// The new journal header written and synced: the checkpoint is durable.
    case header
    /// The streams' ring entries forgotten and the writer's checkpoint moved (under its lock).
    case release
    /// The ring pages the checkpoint passed unmapped and dropped from the page cache.
    case pageCache = "page_cache"
}

/// Receives the duration of each checkpoint step on the checkpointer's thread.
/// The store installs its timers at open; until then steps are not timed.
final class CheckpointObserver: Sendable {
    private let timers = Mutex<[CheckpointStep: CoreMetrics.Timer]>([:])

    func install(_ newTimers: [CheckpointStep: CoreMetrics.Timer]) { timers.withLock { $0 = newTimers } }

    /// Runs `body` and records how long it took as `step`'s duration (also when it throws).
    func timed<Result>(_ step: CheckpointStep, _ body: () throws -> Result) rethrows -> Result {
        let started = monotonicNanoseconds()
        defer {
            let took = monotonicNanoseconds() - started
            timers.withLock { $0[step] }?.recordNanoseconds(took)
        }
        return try body()
    }
}
