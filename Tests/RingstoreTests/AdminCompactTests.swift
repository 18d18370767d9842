import Foundation
import Testing
@testable import Ringstore

/// `ringstore-admin compact`: what reads show is kept byte for byte, what they hide goes,
/// blocks merge, the store goes on at the right versions, and a crash at any step
/// leaves the old store or the new one.
@Suite struct AdminCompactTests {
    @Test func keepsVisibleEventsRemovesHiddenOnesAndMergesBlocks() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let before = try await AdminFixture.visible(at: path)
        let drySession = try MaintenanceSession(directory: path)
        let dry = try await drySession.compact(options: CompactOptions(dryRun: true))
        drySession.close()
        #expect(try await AdminFixture.visible(at: path) == before)
        #expect(!FileManager.default.fileExists(atPath: path + "/compact.new"))
        let session = try MaintenanceSession(directory: path)
        let summary = try await session.compact(options: CompactOptions())
        #expect(dry.eventsAfter == summary.eventsAfter && dry.blocksAfter == summary.blocksAfter)
        // Hidden: 7 of "trimmed", 4 of "truncated", 4 of "soft" and 4 of "aged" (their last
        // events are the version anchors), all 5 of "hard", 2 older snapshots.
        #expect(summary.eventsRemoved == 7 + 4 + 4 + 4 + 5 + 2, "\(summary)")
        #expect(summary.streamsRemoved == 1)
        #expect(summary.blocksAfter < summary.blocksBefore)
        #expect(summary.rewritableBytesAfter < summary.rewritableBytesBefore)
        // Each phase timed once, in order; together they are the run (the summary's time is taken last).
        #expect(dry.phases.map(\.name) == ["verify", "rewrite", "global index"])
        #expect(summary.phases.map(\.name) == ["verify", "rewrite", "global index", "sync", "switch"])
        for run in [dry, summary] {
            #expect(run.phases.allSatisfy { $0.seconds >= 0 })
            #expect(run.phases.reduce(0) { $0 + $1.seconds } <= run.seconds)
        }
        #expect(session.verify().problems.isEmpty)
        session.close()
        #expect(try await AdminFixture.visible(at: path) == before)
        #expect(!FileManager.default.fileExists(atPath: path + "/" + StreamNaming.relativePath("hard").string))
        #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/split").isEmpty)

        // The compacted store reopens, and appends land at the right versions.
        let store = try await EventStore.open(at: path, configuration: .testing())
        #expect(try await store.append(to: "soft", expectedVersion: .exact(4), events: [EventData(type: "t", json: "{}")]).firstVersion == 5)
        #expect(try await store.append(to: "aged", expectedVersion: .exact(4), events: [EventData(type: "t", json: "{}")]).firstVersion == 5)
        #expect(try await store.append(to: "trimmed", expectedVersion: .exact(9), events: [EventData(type: "t", json: "{}")]).firstVersion == 10)
        #expect(try await store.append(to: "s-3", expectedVersion: .exact(14), events: [EventData(type: "t", json: "{}")]).firstVersion == 15)
        await #expect(throws: RingstoreError.self) { try await store.append(to: "hard", events: [EventData(type: "t", json: "{}")]) }
        // readAll and a $all subscription see the same events.
        var all: [RecordedEvent] = []
        for try await event in store.readAll() { all.append(event) }
        var subscribed: [RecordedEvent] = []
        for try await event in try store.subscribeToAll() {
            subscribed.append(event)
            if subscribed.count == all.count { break }
        }
        #expect(subscribed.map(AdminFixture.describe) == all.map(AdminFixture.describe))
        try await store.close()
    }

    @Test func compactsAStoreThatWasNotClosedCleanly() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let store = try await EventStore.open(at: path, configuration: .testing())
        for i in 0..<200 { _ = try await store.append(to: "late-\(i % 7)", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        await store.abandonForTesting()
        let session = try MaintenanceSession(directory: path)
        _ = try await session.compact(options: CompactOptions())
        #expect(session.verify().problems.isEmpty)
        session.close()
        let reopened = try await EventStore.open(at: path, configuration: .testing())
        var late = 0
        for try await event in reopened.readAll() where event.stream.hasPrefix("late-") { late += 1 }
        #expect(late == 200)
        #expect(try reopened.currentVersion(of: "late-0") == 28)
        try await reopened.close()
    }

    @Test func dumpAndStatsPrintTheStore() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let (status, output, _) = try AdminFixture.run(["dump", path, "--stream", "s-3", "--json"])
        #expect(status == 0)
        let lines = output.split(separator: "\n")
        #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }, "every line is JSON")
        #expect(lines.contains { $0.contains("\"kind\":\"record\"") && $0.contains("\"stream\":\"s-3\"") })
        let (plain, text, _) = try AdminFixture.run(["dump", path])
        #expect(plain == 0 && text.contains("header file=journal.ring offset=0") && text.contains("entry file=split/"), "\(text.prefix(500))")
        let session = try MaintenanceSession(directory: path)
        _ = try await session.compact(options: CompactOptions())
        session.close()
        let (again, events, _) = try AdminFixture.run(["dump", path, "--stream", "s-3", "--from", "10"])
        #expect(again == 0)
        #expect(events.split(separator: "\n").filter { $0.hasPrefix("event ") }.count == 5, "versions 10-14 of s-3")
        let (statsStatus, stats, _) = try AdminFixture.run(["stats", path])
        #expect(statsStatus == 0 && stats.contains("stream files:") && stats.contains("largest streams:"), "\(stats)")
    }

    @Test func aCrashAtEveryStepLeavesTheOldOrTheNewStore() async throws {
        let dir = TemporaryDirectory()
        let base = dir.child("base")
        try await AdminFixture.build(at: base)
        let before = try await AdminFixture.visible(at: base)
        for step in CompactionStep.allCases {
            let path = dir.child("crash-\(step.hashValue.magnitude)")
            let session = try await AdminFixture.compactionStopped(at: step, copying: base, to: path)
            session.close()
            // The store's own open finishes or undoes the switch.
            #expect(try await AdminFixture.visible(at: path) == before, "after a crash at: \(step.rawValue)")
            try AdminFixture.expectVerifiesClean(at: path, "after a crash at: \(step.rawValue)")
            AdminFixture.expectNoLeftovers(["compact.new", "compact.old", "compact.commit"], in: path, "a crash at: \(step.rawValue)")
        }
    }

    @Test func sigkillDuringCompactionLeavesTheOldOrTheNewStore() async throws {
        let dir = TemporaryDirectory()
        let base = dir.child("base")
        try await AdminFixture.build(at: base)
        let before = try await AdminFixture.visible(at: base)
        // How long one compaction takes here, to spread the kills over it.
        let timing = dir.child("timing")
        try AdminFixture.copy(base, to: timing)
        let started = ContinuousClock.now
        #expect(try AdminFixture.run(["compact", timing]).0 == 0)
        let whole = ContinuousClock.now - started
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            let path = dir.child("round-\(round)")
            try AdminFixture.copy(base, to: path)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: AdminFixture.executable)
            process.arguments = ["compact", path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let delay = Double.random(in: 0...1, using: &generator) * Double(whole.components.seconds * 1000 + whole.components.attoseconds / 1_000_000_000_000_000)
            try await Task.sleep(for: .milliseconds(Int(delay)))
            kill(process.processIdentifier, SIGKILL)
            await Task.detached { process.waitUntilExit() }.value
            #expect(try await AdminFixture.visible(at: path) == before, "round \(round), killed after \(Int(delay)) ms")
            let check = try MaintenanceSession(directory: path)
            #expect(check.verify().problems.isEmpty, "round \(round)")
            check.close()
        }
    }

    @Test func badInput() async throws {
        let dir = TemporaryDirectory()
        // A missing folder, and a folder that is not a store (nothing is created in it).
        #expect(throws: RingstoreError.self) { try MaintenanceSession(directory: dir.child("missing")) }
        let empty = dir.child("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        let (status, _, message) = try AdminFixture.run(["compact", empty])
        #expect(status == 1 && message.contains("not a Ringstore store"), "\(message)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty)
        #expect(try AdminFixture.run(["verify", dir.child("missing")]).0 == 1)

        // An open store: refused, naming the holder.
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let open = try await EventStore.open(at: path, configuration: .testing())
        let (locked, _, lockMessage) = try AdminFixture.run(["compact", path])
        #expect(locked == 1 && lockMessage.contains("process \(getpid())"), "\(lockMessage)")
        try await open.close()

        // A damaged stream file: compact refuses and changes nothing; --skip-damaged keeps it byte for byte.
        let session0 = try MaintenanceSession(directory: path, configuration: .filePerStream())
        _ = try await session0.compact(options: CompactOptions())  // so that streams have files
        session0.close()
        let damaged = path + "/" + StreamNaming.relativePath("s-5").string
        try AdminFixture.flip(damaged, at: StreamFile.headerLength(nameBytes: 3) + 48 + 20)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: damaged))
        let index = try Data(contentsOf: URL(fileURLWithPath: path + "/global.index"))
        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        await #expect(throws: RingstoreError.self) { _ = try await session.compact(options: CompactOptions()) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/global.index")) == index)
        let summary = try await session.compact(options: CompactOptions(skipDamaged: true))
        #expect(summary.skipped == [StreamNaming.relativePath("s-5").string])
        #expect(try Data(contentsOf: URL(fileURLWithPath: damaged)) == bytes)
        let after = session.verify()
        #expect(after.problems.allSatisfy { $0.file == StreamNaming.relativePath("s-5").string }, "\(after.problems)")
        session.close()
    }
}
