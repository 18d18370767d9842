import Foundation
import Testing
@testable import RingstoreBench

/// The bench's stall report: which recorded spans each slow append overlapped.
@Suite struct StallReportTests {
    private func span(_ what: String, _ start: Int64, _ end: Int64) -> TimedSpan { TimedSpan(what: what, start: start, end: end) }

    /// Overlaps are counted by kind, once per append however many spans of a
    /// kind it meets; touching ends count; spans out of order are sorted; a long
    /// span that began well before a short append still counts.
    @Test func countsEachAppendOncePerKind() {
        let spans = [
            span("sync", 100, 200),
            span("checkpoint: release", 1_000, 5_000),
            span("sync", 150, 260),  // out of order, overlaps the first
            span("sync", 4_000, 4_100),
            span("checkpoint: header", 9_000, 9_010),
        ]
        let slow: [(start: Int64, end: Int64)] = [
            (120, 180),      // two syncs: counted once
            (260, 300),      // touches the second sync's end
            (3_000, 3_500),  // inside the release, which began 2,000 before
            (3_900, 4_050),  // release and a sync
            (6_000, 7_000),  // nothing
            (9_010, 9_500),  // touches the header's end
        ]
        let report = StallReport(slow: slow, spans: spans)
        #expect(report.slowAppends == 6)
        #expect(report.overlappingNothing == 1)
        let byKind = Dictionary(uniqueKeysWithValues: report.overlaps.map { ($0.what, ($0.appends, $0.spans)) })
        #expect(byKind["sync"]! == (3, 3))
        #expect(byKind["checkpoint: release"]! == (2, 1))
        #expect(byKind["checkpoint: header"]! == (1, 1))
        #expect(report.overlaps.map(\.what) == ["sync", "checkpoint: release", "checkpoint: header"], "most appends first")
    }

    /// No spans: every slow append overlaps nothing; no slow appends: kinds are listed with no appends.
    @Test func emptySides() {
        let none = StallReport(slow: [(0, 10), (20, 30)], spans: [])
        #expect(none.slowAppends == 2 && none.overlappingNothing == 2 && none.overlaps.isEmpty)
        let quiet = StallReport(slow: [], spans: [span("sync", 0, 10)])
        #expect(quiet.slowAppends == 0 && quiet.overlaps.map(\.appends) == [0] && quiet.overlaps.map(\.spans) == [1])
    }

    /// The table lists the slow appends and the kinds they overlapped; the JSON carries the report.
    @Test func reportShowsInTheTableAndTheJSON() throws {
        var result = SystemResult(system: "ringstore", events: 1_000, appends: 1_000, seconds: 1, eventsPerSecond: 1_000,
                                  megabytesPerSecond: 0.2, payloadBytes: 200_000, peakRSSBytes: 1)
        result.stalls = StallReport(slow: [(0, 2_000_000), (5_000_000, 6_500_000)], spans: [span("journal sync ≥ 0.7 ms", 100, 900_000)])
        let report = BenchReport(workload: Workload(), compare: nil, compareEvents: nil, results: [result])
        let table = report.table()
        #expect(table.contains("appends ≥ 1 ms") && !table.contains("lined up"), "\(table)")
        #expect(table.contains("alongside journal sync ≥ 0.7 ms") && table.contains("50 % (1 spans)"), "\(table)")
        #expect(table.contains("alongside nothing recorded"), "\(table)")
        #expect(BenchReport.share(6_866, of: 1_346_000) == "0.51 %" && BenchReport.share(1, of: 20) == "5.0 %")
        #expect(BenchReport.share(0, of: 0) == "0 %" && BenchReport.share(3, of: 4) == "75 %")
        let decoded = try JSONDecoder().decode(BenchReport.self, from: Data(try report.json().utf8))
        #expect(decoded.results.first?.stalls == result.stalls)
    }

    /// Every slow append is counted, but shares are of those lined up (each
    /// writer keeps the first few thousand); the threshold names the row.
    @Test func sharesAreOfTheAppendsLinedUp() {
        var result = SystemResult(system: "ringstore", events: 100_000, appends: 100_000, seconds: 1, eventsPerSecond: 100_000,
                                  megabytesPerSecond: 20, payloadBytes: 20_000_000, peakRSSBytes: 1)
        result.stalls = StallReport(slow: [(0, 30_000_000), (50_000_000, 80_000_000)], total: 90_000, thresholdMs: 25,
                                    spans: [span("checkpoint: segments", 10_000_000, 20_000_000)])
        #expect(result.stalls?.slowAppends == 90_000 && result.stalls?.classified == 2)
        let table = BenchReport(workload: Workload(), compare: nil, compareEvents: nil, results: [result]).table()
        #expect(table.contains("appends ≥ 25 ms") && table.contains("90,000 (90 %), 2 lined up"), "\(table)")
        #expect(table.contains("50 % (1 spans)"), "\(table)")
    }
}
