import Foundation
import Testing

/// `ringstore bench` through the built binary: the JSON report parses and its counts add up.
@Suite struct BenchCommandTests {
    let cli = CLITests()

    func report(_ arguments: [String]) throws -> [String: Any] {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable), "build ringstore first")
        let run = try cli.ringstore(["bench", "--json"] + arguments)
        try #require(run.status == 0, "bench failed: \(run.errors)")
        let lines = run.output.split(separator: "\n")
        try #require(lines.count == 1, "expected one JSON line, got: \(run.output)")
        return try cli.json(lines[0])
    }

    func results(_ report: [String: Any]) throws -> [[String: Any]] {
        try #require(report["results"] as? [[String: Any]])
    }

    @Test func jsonCountsAddUp() throws {
        let report = try report(["--events", "2000", "--streams", "50", "--writers", "8", "--batch", "3", "--read"])
        let workload = try #require(report["workload"] as? [String: Any])
        #expect(workload["events"] as? Int == 2000 && workload["streams"] as? Int == 50 && workload["writers"] as? Int == 8)
        #expect(workload["batch"] as? Int == 3 && workload["durability"] as? String == "durable" && workload["eventSize"] as? Int == 200)
        #expect(report.keys.contains("ratio") && report["ratio"] is NSNull)
        let results = try results(report)
        try #require(results.count == 1)
        let ringstore = results[0]
        #expect(ringstore["system"] as? String == "ringstore")
        #expect(ringstore["events"] as? Int == 2000)
        // Each writer appends 250 events, 3 at a time: 83 appends of 3 and one of 1.
        #expect(ringstore["appends"] as? Int == 8 * 84)
        #expect(ringstore["payloadBytes"] as? Int == 2000 * 200)
        let seconds = try #require(ringstore["seconds"] as? Double)
        let rate = try #require(ringstore["eventsPerSecond"] as? Double)
        #expect(seconds > 0 && abs(rate - 2000 / seconds) <= rate * 1e-9)
        let latency = try #require(ringstore["latencyMs"] as? [String: Double])
        let (p50, p99, p999) = (try #require(latency["p50"]), try #require(latency["p99"]), try #require(latency["p999"]))
        #expect(p50 > 0 && p50 <= p99 && p99 <= p999)
        // The journal alone holds more than the payload: bytes written per payload byte exceeds 1.
        let written = try #require(ringstore["bytesWritten"] as? Int)
        #expect(written > 2000 * 200)
        #expect(abs(try #require(ringstore["bytesWrittenPerPayloadByte"] as? Double) - Double(written) / 400_000) < 1e-9)
        #expect((ringstore["flushes"] as? Int ?? 0) >= 1 && (ringstore["peakRSSBytes"] as? Int ?? 0) > 1 << 20)
        // Appending and splitting 2,000 events takes processor time, and not seconds of it per event.
        let processor = try #require(ringstore["processorMicrosPerEvent"] as? [String: Double])
        let (user, system) = (try #require(processor["user"]), try #require(processor["system"]))
        #expect(user >= 0 && system >= 0 && user + system > 0 && user + system < 1e6)
        #expect(ringstore["readerWaitMsP99"] is Double && ringstore["flushesPerSecond"] is Double)
        // The journal's own syncs, timed by the store: durable appends made at least one.
        let syncs = try #require(ringstore["journalSyncMs"] as? [String: Double])
        let (syncP50, syncP99, syncMax) = (try #require(syncs["p50"]), try #require(syncs["p99"]), try #require(syncs["max"]))
        #expect(syncP50 > 0 && syncP50 <= syncP99 && syncP99 <= syncMax * 1.01)
        let read = try #require(ringstore["read"] as? [String: Any])
        #expect(read["streamEvents"] as? Int == 2000 && read["allEvents"] as? Int == 2000)
        #expect((read["streams"] as? Int ?? 0) >= 8 && (read["streams"] as? Int ?? 0) <= 50)
    }

    /// Live subscribers see every event appended during the ingest.
    @Test func subscribersReportDeliveryAndLatency() throws {
        let report = try report(["--events", "3000", "--streams", "30", "--writers", "6", "--subscribers", "2"])
        #expect((report["workload"] as? [String: Any])?["subscribers"] as? Int == 2)
        let ringstore = try #require(try results(report).first)
        let subscription = try #require(ringstore["subscription"] as? [String: Any])
        #expect(subscription["subscribers"] as? Int == 2)
        #expect(try #require(subscription["eventsPerSecondPerSubscriber"] as? Double) > 0)
        #expect(try #require(subscription["eventsDelivered"] as? Int) >= 2 * 3000)
        let latency = try #require(subscription["liveLatencyMs"] as? [String: Double])
        #expect(try #require(latency["p50"]) <= (try #require(latency["p99"])))
        #expect((subscription["latencySamples"] as? Int ?? 0) > 0)
    }

    @Test func compareWithSQLiteGivesBothRowsAndTheirRatio() throws {
        let report = try report(["--events", "1200", "--streams", "40", "--writers", "4", "--batch", "2",
                                 "--durability", "relaxed", "--compare", "sqlite", "--compare-events", "600", "--read"])
        let workload = try #require(report["workload"] as? [String: Any])
        #expect(workload["compare"] as? String == "sqlite" && workload["compareEvents"] as? Int == 600)
        let results = try results(report)
        try #require(results.count == 2)
        #expect(results.map { $0["system"] as? String } == ["ringstore", "sqlite"])
        #expect(results[1]["journalSyncMs"] == nil)  // SQLite has no journal syncs of ours to time
        #expect(results[0]["events"] as? Int == 1200 && results[1]["events"] as? Int == 600)
        #expect(results[1]["appends"] as? Int == 300)
        let sqliteRead = try #require(results[1]["read"] as? [String: Any])
        #expect(sqliteRead["streamEvents"] as? Int == 600 && sqliteRead["allEvents"] as? Int == 600)
        // SQLite's WAL holds whole pages per commit: far more than the payload.
        #expect((results[1]["bytesWrittenPerPayloadByte"] as? Double ?? 0) > 1)
        let ours = try #require(results[0]["eventsPerSecond"] as? Double)
        let theirs = try #require(results[1]["eventsPerSecond"] as? Double)
        let ratio = try #require(report["ratio"] as? Double)
        #expect(abs(ratio - ours / theirs) <= ratio * 1e-9)
    }

    /// `--peer-check` runs the minimal GRDB program after the peer, on the peer's
    /// event count: a third result with only what it measures, and the peer's
    /// events/s over its as `peerRatio`; `ratio` stays Ringstore over the peer.
    @Test func peerCheckRunsTheMinimalProgramAfterThePeer() throws {
        let report = try report(["--events", "600", "--streams", "40", "--writers", "4", "--batch", "2",
                                 "--compare", "sqlite", "--compare-events", "300", "--peer-check"])
        let workload = try #require(report["workload"] as? [String: Any])
        #expect(workload["compare"] as? String == "sqlite" && workload["peerCheck"] as? Bool == true)
        let results = try results(report)
        try #require(results.count == 3)
        #expect(results.map { $0["system"] as? String } == ["ringstore", "sqlite", "sqlite-minimal"])
        let minimal = results[2]
        #expect(minimal["events"] as? Int == 300 && results[1]["events"] as? Int == 300)
        // 4 writers of 75 events, 2 per append: 37 appends of 2 and one of 1 each.
        #expect(minimal["appends"] as? Int == 4 * 38 && results[1]["appends"] as? Int == 4 * 38)
        #expect(minimal["payloadBytes"] as? Int == 300 * 200)
        #expect((minimal["seconds"] as? Double ?? 0) > 0 && (minimal["peakRSSBytes"] as? Int ?? 0) > 0)
        // It measures time only: no latency, reader, flush or bytes-written figures.
        for key in ["latencyMs", "readerWaitMsP99", "flushesPerSecond", "bytesWrittenPerPayloadByte"] {
            #expect(minimal[key] == nil, "\(key) should be absent")
            #expect(results[1][key] != nil, "the peer should report \(key)")
        }
        let rates = try results.map { try #require($0["eventsPerSecond"] as? Double) }
        let ratio = try #require(report["ratio"] as? Double)
        #expect(abs(ratio - rates[0] / rates[1]) <= ratio * 1e-9)
        let peerRatio = try #require(report["peerRatio"] as? Double)
        #expect(abs(peerRatio - rates[1] / rates[2]) <= peerRatio * 1e-9)
    }

    @Test func peerCheckShowsInTheTable() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable), "build ringstore first")
        let run = try cli.ringstore(["bench", "--events", "200", "--streams", "10", "--writers", "2",
                                     "--compare", "sqlite", "--compare-events", "100", "--peer-check"])
        #expect(run.status == 0, "\(run.errors)")
        let header = try #require(run.output.split(separator: "\n").first { $0.contains("sqlite-minimal") && $0.contains("ringstore") })
        #expect(header.contains("sqlite"))
        #expect(run.output.contains("peer check (sqlite events/s over sqlite-minimal's): "))
        #expect(run.output.contains("ratio (ringstore events/s over sqlite's): "))
    }

    @Test func durationBoundsTheRun() throws {
        let report = try report(["--duration", "0.3", "--streams", "20", "--writers", "4", "--durability", "relaxed"])
        let workload = try #require(report["workload"] as? [String: Any])
        #expect(workload["events"] == nil && workload["durationSeconds"] as? Double == 0.3)
        let ringstore = try #require(try results(report).first)
        #expect((ringstore["events"] as? Int ?? 0) > 0)
        let seconds = try #require(ringstore["seconds"] as? Double)
        #expect(seconds >= 0.3 && seconds < 30)
    }

    /// With `--rate`, writers append on a schedule: 4 writers, 50 events each at
    /// 400 events/s in all, so each writer's last append is due 490 ms or more
    /// after the start. The small ring never fills.
    ///
    /// (At 2,000 events/s, a writer every 2 ms, every append of a run on a machine
    /// busy with the rest of the suite once started behind its schedule, and no
    /// append had waited to be woken: 10 ms apart leaves room for such a machine.)
    @Test func rateTimesTheAppendsAndTheRingNeverFills() throws {
        let report = try report(["--events", "200", "--streams", "8", "--writers", "4", "--rate", "400"])
        #expect((report["workload"] as? [String: Any])?["rate"] as? Double == 400)
        let ringstore = try #require(try results(report).first)
        #expect(ringstore["events"] as? Int == 200)
        let seconds = try #require(ringstore["seconds"] as? Double)
        #expect(seconds >= 0.49 && seconds < 30)
        #expect(ringstore["journalFullWaits"] as? Int == 0)
        // The load generator's own lateness is reported beside the latency it is part of.
        let lateness = try #require(ringstore["wakeLatenessMsP99"] as? Double)
        let latency = try #require(ringstore["latencyMs"] as? [String: Any])
        #expect(lateness >= 0 && lateness <= (latency["max"] as? Double ?? 0) + 1)
        // Split into the appends woken from their wait and those started behind schedule (no wait).
        let woken = try #require(ringstore["wokenLateMsP99"] as? Double)
        #expect(woken >= 0 && woken <= (latency["max"] as? Double ?? 0) + 1)
        let behind = try #require(ringstore["behindSchedule"] as? [String: Any])
        let behindAppends = try #require(behind["appends"] as? Int), share = try #require(behind["share"] as? Double)
        #expect(behindAppends >= 0 && behindAppends < 200, "at 400 events/s most appends wait for their due time")
        #expect(abs(share - Double(behindAppends) / 200) < 1e-9)
        let behindP50 = try #require(behind["p50Ms"] as? Double), behindP99 = try #require(behind["p99Ms"] as? Double)
        #expect(0 <= behindP50 && behindP50 <= behindP99)
        // So is the call's own time, which leaves the lateness out: never longer than from the due time.
        let calls = try #require(ringstore["appendCallMs"] as? [String: Double])
        let callP50 = try #require(calls["p50"]), callP99 = try #require(calls["p99"]), callMax = try #require(calls["max"])
        #expect(0 < callP50 && callP50 <= callP99 && callP99 <= callMax)
        #expect(callMax <= (latency["max"] as? Double ?? 0) + 0.01)
    }

    /// Without `--rate` nothing is due at a time, so no wake-up lateness (nor a
    /// separate call time) is reported.
    @Test func noRateNoWakeUpLateness() throws {
        let report = try report(["--events", "40", "--streams", "8", "--writers", "2"])
        let ringstore = try #require(try results(report).first)
        #expect(ringstore["wakeLatenessMsP99"] == nil)
        #expect(ringstore["behindSchedule"] == nil && ringstore["wokenLateMsP99"] == nil)
        #expect(ringstore["appendCallMs"] == nil, "without a rate the latency already counts from the call")
    }

    /// `--warm-up` gives every stream one unmeasured event first: the measured
    /// counts are the asked-for events, and reading back finds both.
    @Test func warmUpAppendsOneUnmeasuredEventPerStream() throws {
        let report = try report(["--events", "300", "--streams", "20", "--writers", "4", "--warm-up", "--read"])
        #expect((report["workload"] as? [String: Any])?["warmUp"] as? Bool == true)
        let ringstore = try #require(try results(report).first)
        #expect(ringstore["events"] as? Int == 300)
        #expect(ringstore["payloadBytes"] as? Int == 300 * 200)
        let read = try #require(ringstore["read"] as? [String: Any])
        #expect(read["allEvents"] as? Int == 320 && read["streamEvents"] as? Int == 320 && read["streams"] as? Int == 20)
    }

    @Test func tableNamesEveryMeasurement() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable), "build ringstore first")
        let run = try cli.ringstore(["bench", "--events", "300", "--streams", "10", "--writers", "2"])
        #expect(run.status == 0, "\(run.errors)")
        for label in ["events/s", "MB/s (payload)", "append p50", "append p99", "append p99.9", "reader wait p99",
                      "flushes/s", "bytes written / payload byte", "processor time / event", "peak RSS", "journal-full waits"] {
            #expect(run.output.contains(label), "missing \(label) in \(run.output)")
        }
        #expect(run.output.contains("300"))
    }

    @Test func badFlagsGetClearMessages() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable), "build ringstore first")
        let existing = TemporaryDirectory()
        let cases: [([String], String)] = [
            (["--streams", "4", "--writers", "8"], "--streams must be at least --writers"),
            (["--event-size", "5"], "--event-size must be between"),
            (["--batch", "0"], "--batch must be at least 1"),
            (["--events", "0"], "--events must be at least 1"),
            (["--duration", "0"], "--duration must be a positive number"),
            (["--rate", "0"], "--rate must be a positive number"),
            (["--durability", "sometimes"], "durable"),
            (["--compare", "postgres"], "sqlite"),
            (["--compare-events", "10"], "--compare-events needs --compare sqlite"),
            (["--peer-check"], "--peer-check needs --compare sqlite"),
            (["--dir", existing.path], "already exists"),
        ]
        for (arguments, message) in cases {
            let run = try cli.ringstore(["bench"] + arguments)
            #expect(run.status != 0, "\(arguments) should fail")
            #expect(run.errors.contains(message), "\(arguments): \(run.errors)")
        }
    }
}
