import Histogram

/// Latencies in an HdrHistogram: nanoseconds from 100 ns to 60 s, two
/// significant digits (values are kept to within 1 %).
///
/// Each writer task keeps its own recorder (a value, no locking) and the runner
/// merges them at the end. Two digits rather than three keep 64 writers'
/// histograms at about 12 KiB each instead of 90 KiB, so they barely show in
/// the peak RSS the bench reports.
public struct LatencyRecorder: Sendable {
    private var histogram = Histogram<UInt32>(lowestDiscernibleValue: 100, highestTrackableValue: 60_000_000_000,
                                              numberOfSignificantValueDigits: .two)

    public init() {}

    public mutating func record(_ duration: Duration) {
        // `components` divides a 128-bit count of attoseconds: take it once (the
        // writers record one latency per append, on the CPU the store runs on).
        let (seconds, attoseconds) = duration.components
        let nanoseconds = max(100, min(60_000_000_000, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        _ = histogram.record(UInt64(nanoseconds))
    }

    /// Records a latency given in nanoseconds (from the library's `monotonicNanoseconds()`):
    /// no `Duration` arithmetic (128-bit) on the writers' path.
    public mutating func record(nanoseconds: UInt64) {
        _ = histogram.record(max(100, min(60_000_000_000, nanoseconds)))
    }

    public mutating func merge(_ other: LatencyRecorder) {
        histogram.add(other.histogram)
    }

    /// How many latencies were recorded.
    public var count: UInt64 { histogram.totalCount }

    /// The latency at `percentile` (0-100) in milliseconds; 0 if nothing was recorded.
    public func milliseconds(atPercentile percentile: Double) -> Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1_000_000
    }

    /// The longest latency in milliseconds (the longest stall an append saw); 0 if none.
    public var maxMilliseconds: Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1_000_000
    }

    /// p50, p99, p99.9 and the longest, in milliseconds (all 0 if nothing was recorded).
    public var summary: SystemResult.Latency {
        .init(p50: milliseconds(atPercentile: 50), p99: milliseconds(atPercentile: 99),
              p999: milliseconds(atPercentile: 99.9), max: maxMilliseconds)
    }
}
