import Foundation
import Testing
@testable import RingstoreBench

/// The bench workload's arithmetic: writers own disjoint streams, quotas add up, payloads are exact.
@Suite struct WorkloadTests {
    @Test(arguments: [(10_000, 64), (50, 8), (7, 7), (100, 3)])
    func writersOwnEveryStreamExactlyOnce(streams: Int, writers: Int) {
        let workload = Workload(streams: streams, writers: writers)
        let owned = (0..<writers).flatMap { workload.ownedStreams(of: $0) }
        #expect(owned.sorted() == Array(0..<streams))
        #expect((0..<writers).allSatisfy { !workload.ownedStreams(of: $0).isEmpty })
    }

    @Test(arguments: [1, 7, 2000, 1_000_001])
    func quotasAddUpToTheEvents(events: Int) {
        let workload = Workload(streams: 100, events: events, writers: 8)
        let quotas = (0..<8).map { workload.quota(of: $0) ?? -1 }
        #expect(quotas.reduce(0, +) == events)
        #expect(quotas.max()! - quotas.min()! <= 1)
        #expect(Workload(events: nil, duration: 1).quota(of: 0) == nil)
    }

    @Test(arguments: Workload.Payload.allCases)
    func payloadsAreValidJSONOfExactlyTheEventSize(kind: Workload.Payload) throws {
        // Every size from the smallest past the one where the sensor payload has all its fields and a note.
        for size in Array(BenchPayload.minimumSize...260) + [4096, Workload.maxEventSize] {
            let payload = BenchPayload(size: size, kind: kind)
            let bytes = payload.make(sequence: 1_234_567)
            #expect(bytes.count == size)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], "size \(size)")
            #expect(object["seq"] as? String == "0001234567")
            #expect(payload.make(sequence: 1) != payload.make(sequence: 2))
            #expect(payload.make(sequence: 99) == payload.make(sequence: 99), "a payload is a function of its sequence number")
        }
    }

    /// The sensor payload's values stay in their ranges (fixed widths keep the template's layout),
    /// and it has every field at the bench's default size.
    @Test func sensorPayloadsHaveTheirFieldsInRange() throws {
        let payload = BenchPayload(size: 200, kind: .sensor)
        var notes = Set<String>()
        for sequence in 0..<2000 {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(payload.make(sequence: sequence))) as? [String: Any])
            #expect(Set(object.keys) == ["seq", "ts", "temperature", "humidity", "pressure", "battery", "status", "note"])
            let temperature = try #require(object["temperature"] as? Double)
            let humidity = try #require(object["humidity"] as? Double)
            let pressure = try #require(object["pressure"] as? Double)
            let battery = try #require(object["battery"] as? Int)
            #expect((10...39.99).contains(temperature) && (10...99.9).contains(humidity))
            #expect((1010...1099.9).contains(pressure) && (10...99).contains(battery))
            #expect((object["ts"] as? Int).map { $0 >= 1_764_547_200_000 } == true)
            notes.insert(try #require(object["note"] as? String))
        }
        #expect(notes.count > 1900, "the notes vary")
    }

    @Test func validationNamesTheKnob() {
        let cases: [(Workload, String)] = [
            (Workload(streams: 4, writers: 8), "--streams"),
            (Workload(batch: 0), "--batch"),
            (Workload(slowAppendMs: 0), "--slow-append-ms"),
            (Workload(eventSize: 10), "--event-size"),
            (Workload(events: 0), "--events"),
            (Workload(events: nil, duration: nil), "--events or --duration"),
            (Workload(duration: .infinity), "--duration"),
            (Workload(rate: 0), "--rate"),
        ]
        for (workload, knob) in cases {
            #expect { try workload.validate() } throws: { ($0 as? BenchError)?.message.contains(knob) == true }
        }
        #expect(throws: Never.self) { try Workload().validate() }
    }

    @Test func latencyPercentilesAreOrderedAndNearTheValues() {
        var recorder = LatencyRecorder()
        for microseconds in 1...1000 { recorder.record(.microseconds(microseconds)) }
        var other = LatencyRecorder()
        other.record(.seconds(2))
        recorder.merge(other)
        #expect(recorder.count == 1001)
        let p50 = recorder.milliseconds(atPercentile: 50)
        #expect(abs(p50 - 0.5) < 0.01)
        #expect(recorder.milliseconds(atPercentile: 99) < 1.01)
        #expect(abs(recorder.milliseconds(atPercentile: 100) - 2000) < 20)
        #expect(LatencyRecorder().milliseconds(atPercentile: 99) == 0)
    }

    /// The writers' path records nanoseconds directly: clamped to the
    /// histogram's range like durations, merged like them.
    @Test func latenciesRecordedInNanoseconds() {
        var recorder = LatencyRecorder()
        for n in [3_000_000, 1_000, 50] as [UInt64] { recorder.record(nanoseconds: n) }  // 50 counts as 100 ns
        #expect(recorder.count == 3)
        #expect(abs(recorder.maxMilliseconds - 3) < 0.03)
        #expect(recorder.milliseconds(atPercentile: 0) < 0.000_11)
        var other = LatencyRecorder()
        for _ in 0..<200 { other.record(nanoseconds: 2_000_000) }
        other.record(.milliseconds(9))
        recorder.merge(other)
        #expect(recorder.count == 204)
        #expect(abs(recorder.maxMilliseconds - 9) < 0.09)
        #expect(abs(recorder.milliseconds(atPercentile: 50) - 2) < 0.02)
    }
}

/// The process meter reads `/proc` files whatever their spacing.
@Suite struct ProcessMeterTests {
    @Test func fieldsAfterATabOrSpacesAreRead() {
        let status = "Name:\tringstore\nVmPeak:\t  900000 kB\nVmHWM:\t   80444 kB\nVmRSS:\t   62476 kB\n"
        #expect(ProcessMeter.field("VmHWM:", inText: status) == 80444)
        #expect(ProcessMeter.field("VmRSS:", inText: status) == 62476)
        #expect(ProcessMeter.field("write_bytes:", inText: "rchar: 5\nwrite_bytes: 4096\n") == 4096)
        #expect(ProcessMeter.field("VmSwap:", inText: status) == nil)
    }
}
