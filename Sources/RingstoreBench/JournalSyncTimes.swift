import CoreMetrics
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
/// `bootstrap()` installs it once per process (the `ringstore bench` command
/// does, before opening a store); where another backend was installed first,
/// no sync times are collected and the report leaves them out.
public final class JournalSyncTimes: MetricsFactory, Sendable {
    /// The one instance the process's metrics system may use.
    public static let shared = JournalSyncTimes()
    private static let installed = Atomic<Bool>(false)

    /// The timer the store records each journal sync with.
    static let timerLabel = "ringstore_flush_duration"

    private let timer = SyncTimer()

    private init() {}

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

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        label == Self.timerLabel ? timer : NOOPMetricsHandler.instance
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

    /// The handler behind every store's sync timer: one shared histogram.
    private final class SyncTimer: TimerHandler, Sendable {
        private let syncs = Mutex(LatencyRecorder())

        func recordNanoseconds(_ duration: Int64) {
            syncs.withLock { $0.record(nanoseconds: UInt64(max(0, duration))) }
        }

        func take() -> LatencyRecorder {
            syncs.withLock { recorder in
                defer { recorder = LatencyRecorder() }
                return recorder
            }
        }
    }
}
