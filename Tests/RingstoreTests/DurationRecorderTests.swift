import Testing
@testable import Ringstore

/// The percentile `stats()` reports, found by selection rather than a sort.
@Suite struct DurationRecorderTests {
    /// What a sort gives at `rank`.
    func sortedAnswer(_ values: [Double], _ rank: Int) -> Double { values.sorted()[rank] }

    @Test func selectionAgreesWithSortingAtEveryRank() {
        var random = SystemRandomNumberGenerator()
        let shapes: [[Double]] = [
            [1],
            [2, 1],
            (0..<100).map(Double.init),                          // sorted
            (0..<100).reversed().map(Double.init),               // reversed
            [Double](repeating: 7, count: 50),                   // all equal
            (0..<200).map { Double($0 % 3) },                    // few distinct values
            (0..<500).map { _ in Double(Int.random(in: 0..<40, using: &random)) },
            (0..<4096).map { _ in Double.random(in: 0..<1_000, using: &random) },
        ]
        for values in shapes {
            for rank in Set([0, values.count / 2, values.count - 1, min(values.count - 1, Int(Double(values.count) * 0.99))]) {
                var copy = values
                #expect(DurationRecorder.select(rank, in: &copy) == sortedAnswer(values, rank), "rank \(rank) of \(values.count)")
            }
        }
    }

    @Test func p99OfRecordedDurations() {
        let recorder = DurationRecorder()
        #expect(recorder.p99Milliseconds == 0)
        for i in (1...200).reversed() { recorder.record(.milliseconds(i)) }
        #expect(recorder.p99Milliseconds == 199)
        #expect(recorder.maxMilliseconds == 200)
    }

    /// A benchmark's measured run reports the longest from its start (``DurationRecorder/resetLongest()``).
    @Test func theLongestCountsFromAReset() {
        let recorder = DurationRecorder()
        recorder.record(.milliseconds(500))
        recorder.resetLongest()
        #expect(recorder.maxMilliseconds == 0)
        recorder.record(.milliseconds(7))
        #expect(recorder.maxMilliseconds == 7)
        #expect(recorder.count == 2, "the samples stay")
    }
}
