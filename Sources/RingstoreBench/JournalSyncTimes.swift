import CoreMetrics
import Ringstore
import Synchronization

/// Collects how long each journal sync (`fdatasync` of the ring) took, by
/// standing in as the process's metrics backend: the store times every sync
/// with its `ringstore_flush_duration` timer, and this factory keeps those
/// durations in a histogram and hands every other metric a no-op handler.
///
/// Why: an append's latency at low load is about one or two syncs, so the
/// bench prints the syncs' own percentiles beside the appends'. When the
/// append p99 is no higher than the sync p99, the disk sets it, not the store.
///
/// It also keeps a timeline for the ``StallReport``: each sync of at least
/// ``StallReport/slowSyncNanoseconds``, and each step of every checkpoint (the
/// store's `ringstore_checkpoint_step_duration` timer, dimension `step`), as a
/// span ending when it was recorded.
///
/// `bootstrap()` installs it once per process (the `ringstore bench` command
/// does, before opening a store); where another backend was installed first,
/// no sync times are collected and the report leaves them out.
public final class JournalSyncTimes: MetricsFactory, Sendable {
    /// The one instance the process's metrics system may use.
    public static let shared = JournalSyncTimes()
    private static let installed = Atomic<Bool>(false)

    /// The timer the store records each journal sync with.
    static let timerLabel = "ringstore_flush_duration"
    /// The timer the store records each checkpoint step with.
    static let checkpointStepLabel = "ringstore_checkpoint_step_duration"
    /// Spans kept between two ``take()``s: far more than a run makes (a few
    /// thousand slow syncs, eight per checkpoint), bounded all the same (about
    /// 4 MiB, so that a long run on a slow device does not inflate the peak
    /// memory the bench reports).
    static let spanLimit = 100_000

    private let spans = SpanLog()
    private let timer: SyncTimer

    private init() {
        timer = SyncTimer(spans: spans)
    }

    /// Makes this the process's metrics backend. Call it once, before any
    /// store opens; a second call does nothing.
    public static func bootstrap() {
        guard installed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        MetricsSystem.bootstrap(shared)
    }

    /// Whether this collects the syncs (it was bootstrapped).
    public static var isCollecting: Bool { installed.load(ordering: .relaxed) }

    /// The syncs recorded since the last call, and starts a new count.
    public func take() -> LatencyRecorder { timer.take() }

    /// The spans recorded since the last call (in the order recorded), and starts anew.
    public func takeSpans() -> [TimedSpan] { spans.take() }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        switch label {
        case Self.timerLabel:
            return timer
        case Self.checkpointStepLabel:
            let step = dimensions.first { $0.0 == "step" }?.1 ?? "?"
            return SpanTimer(what: "checkpoint: \(step)", spans: spans)
        default:
            return NOOPMetricsHandler.instance
        }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        NOOPMetricsHandler.instance
    }
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { NOOPMetricsHandler.instance }
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        NOOPMetricsHandler.instance
    }
    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    public func destroyMeter(_ handler: any MeterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}

    /// The handler behind every store's sync timer: one shared histogram, and
    /// a span for each slow sync.
    private final class SyncTimer: TimerHandler, Sendable {
        private let syncs = Mutex(LatencyRecorder())
        private let spans: SpanLog

        init(spans: SpanLog) { self.spans = spans }

        /// What a slow sync's span is called ("journal sync ≥ 0.7 ms"), from the threshold itself.
        static let slowSyncSpan = "journal sync ≥ \(BenchReport.trimmed(Double(StallReport.slowSyncNanoseconds) / 1_000_000)) ms"

        func recordNanoseconds(_ duration: Int64) {
            syncs.withLock { $0.record(nanoseconds: UInt64(max(0, duration))) }
            if duration >= StallReport.slowSyncNanoseconds { spans.record(Self.slowSyncSpan, nanoseconds: duration) }
        }

        func take() -> LatencyRecorder {
            syncs.withLock { recorder in
                defer { recorder = LatencyRecorder() }
                return recorder
            }
        }
    }

    /// The handler of one checkpoint step's timer: a span each time.
    private final class SpanTimer: TimerHandler, Sendable {
        let what: String
        private let spans: SpanLog

        init(what: String, spans: SpanLog) {
            self.what = what
            self.spans = spans
        }

        func recordNanoseconds(_ duration: Int64) { spans.record(what, nanoseconds: duration) }
    }

    /// The spans recorded so far, shared by the handlers.
    private final class SpanLog: Sendable {
        private let spans = Mutex<[TimedSpan]>([])

        /// Adds a span that ends now and lasted `duration` nanoseconds.
        func record(_ what: String, nanoseconds duration: Int64) {
            let end = monotonicNanoseconds()
            spans.withLock { spans in
                if spans.count < JournalSyncTimes.spanLimit { spans.append(TimedSpan(what: what, start: end - max(0, duration), end: end)) }
            }
        }

        func take() -> [TimedSpan] {
            spans.withLock { spans in
                defer { spans = [] }
                return spans
            }
        }
    }
}
