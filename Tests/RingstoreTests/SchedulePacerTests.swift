import Ringstore
import Testing
@testable import RingstoreBench

/// The bench's pacer: writers wake no earlier than their due times, in any
/// order of arrival, and a stop releases whoever still waits.
@Suite struct SchedulePacerTests {
    @Test func writersWakeAtOrAfterTheirDueTimes() async {
        let pacer = SchedulePacer()
        let start = monotonicNanoseconds()
        // Out of order, some already past, two at the same time.
        let offsets: [Int64] = [30, 5, -1, 20, 5, 0, 12, 40, 1, 25].map { $0 * 1_000_000 }
        let woke = await withTaskGroup(of: (Int64, Int64).self) { group in
            for offset in offsets {
                group.addTask {
                    await pacer.wait(until: start + offset)
                    return (start + offset, monotonicNanoseconds())
                }
            }
            var woke: [(Int64, Int64)] = []
            for await pair in group { woke.append(pair) }
            return woke
        }
        pacer.stop()
        #expect(woke.count == offsets.count)
        for (due, at) in woke { #expect(at >= due, "woke \(due - at) ns early") }
    }

    @Test(.timeLimit(.minutes(1))) func anEarlierWriterIsNotHeldBehindALaterOne() async {
        let pacer = SchedulePacer()
        let start = monotonicNanoseconds()
        let late = Task { await pacer.wait(until: start + 3_600_000_000_000) }  // an hour away
        // Whether or not the pacer already sleeps towards the late one, the early one wakes.
        await pacer.wait(until: start + 10_000_000)
        #expect(monotonicNanoseconds() >= start + 10_000_000)
        pacer.stop()  // releases the late writer at once
        await late.value
    }
}
