import Ringstore

/// Something the store did, from `start` to `end` on the monotonic clock
/// (nanoseconds): a journal sync slower than ``StallReport/slowSyncNanoseconds``,
/// or one step of a checkpoint (``JournalSyncTimes`` records them).
public struct TimedSpan: Sendable, Hashable {
    public var what: String
    public var start: Int64
    public var end: Int64

    public init(what: String, start: Int64, end: Int64) {
        self.what = what
        self.start = start
        self.end = end
    }
}

/// What the slow appends (a call of at least `--slow-append-ms`) ran alongside: for
/// each kind of recorded span (a slow journal sync, each step of a checkpoint),
/// how many slow appends overlapped one, and how many overlapped nothing
/// recorded.
///
/// Why: an append p99 says how long the tail is, not what it is made of. A
/// trace of this kind (slow appends beside the checkpoint's steps and the slow
/// syncs) is what found a checkpoint's release of ring entries starving the
/// appends; the report keeps it in every run. An overlap is a lead, not a
/// proof: an append can overlap a step and wait for something else.
public struct StallReport: Sendable, Codable, Hashable {
    /// A journal sync counts as a span from this long (about 6× its usual
    /// duration on the working disk).
    public static let slowSyncNanoseconds: Int64 = 700_000
    /// Slow appends kept per writer for the overlaps (all are counted): 64 KiB
    /// a writer at most, so that a run where every append is slow does not
    /// inflate the peak memory the bench reports.
    public static let slowAppendsKeptPerWriter = 4_096

    /// One kind of span, and the slow appends that overlapped at least one of that kind.
    public struct Overlap: Sendable, Codable, Hashable {
        public var what: String
        public var appends: Int
        /// Spans of this kind recorded during the run.
        public var spans: Int
    }

    /// An append was slow from this long (its call, without any lateness).
    public var thresholdMs: Double
    /// Every slow append of the run.
    public var slowAppends: Int
    /// The slow appends lined up against the spans: the first
    /// ``slowAppendsKeptPerWriter`` of each writer.
    public var classified: Int
    /// By kind, most classified appends first. An append overlapping spans of
    /// two kinds counts in both.
    public var overlaps: [Overlap]
    /// Classified appends that overlapped no recorded span.
    public var overlappingNothing: Int

    /// Lines up the `slow` appends kept (start and end, monotonic nanoseconds)
    /// against `spans`; `total` counts every slow append (nil: those kept).
    public init(slow: [(start: Int64, end: Int64)], total: Int? = nil, thresholdMs: Double = 1, spans: [TimedSpan]) {
        let sorted = spans.sorted { $0.start < $1.start }
        let longest = sorted.map { $0.end - $0.start }.max() ?? 0
        var counts: [String: Int] = [:]
        var nothing = 0
        for append in slow {
            // Spans that start after the append ends cannot overlap it; of those
            // before, only the ones starting within the longest span's length can.
            var upper = sorted.partitioningIndex { $0.start > append.end }
            var kinds = Set<String>()
            while upper > 0 {
                upper -= 1
                let span = sorted[upper]
                if span.start < append.start - longest { break }
                if span.end >= append.start { kinds.insert(span.what) }
            }
            if kinds.isEmpty { nothing += 1 }
            for kind in kinds { counts[kind, default: 0] += 1 }
        }
        var spansByKind: [String: Int] = [:]
        for span in spans { spansByKind[span.what, default: 0] += 1 }
        self.thresholdMs = thresholdMs
        slowAppends = max(total ?? slow.count, slow.count)
        classified = slow.count
        overlaps = spansByKind.keys
            .map { Overlap(what: $0, appends: counts[$0] ?? 0, spans: spansByKind[$0] ?? 0) }
            .sorted { ($0.appends, $1.what) > ($1.appends, $0.what) }
        overlappingNothing = nothing
    }
}
