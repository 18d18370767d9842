import Foundation
import Testing
@testable import Ringstore

/// Damage done to a closed store's journal, as a crash or bad media would.
struct JournalSurgeon {
    let path: String
    let capacity: UInt64

    init(directory: String, capacity: UInt64) {
        path = directory + "/" + Journal.fileName
        self.capacity = capacity
    }

    func fileOffset(ofPosition position: UInt64) -> UInt64 { RingFile.headerAreaSize + position % capacity }

    func modify(at position: UInt64, plus delta: Int = 0, _ body: (inout UInt8) -> Void) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let offset = fileOffset(ofPosition: position) + UInt64(delta)
        try handle.seek(toOffset: offset)
        var byte = try handle.read(upToCount: 1)![0]
        body(&byte)
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [byte])
    }

    func zero(from position: UInt64, plus delta: Int, count: Int) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: fileOffset(ofPosition: position) + UInt64(delta))
        try handle.write(contentsOf: [UInt8](repeating: 0, count: count))
    }
}

@Suite struct RecoveryTests {
    let capacity: UInt64 = 1 << 20

    /// Appends `count` single-event appends to stream "s" and closes; returns their results.
    func fill(_ dir: TemporaryDirectory, count: Int, size: Int = 100) async throws -> [AppendResult] {
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        var results: [AppendResult] = []
        for i in 0..<count {
            results.append(try await store.append(to: "s", events: [EventData(type: "T", data: [UInt8](repeating: UInt8(i), count: size))]))
        }
        try await store.close()
        return results
    }

    func reopen(_ dir: TemporaryDirectory) async throws -> (EventStore, [RecordedEvent]) {
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        return (store, try await store.readAll().collect())
    }

    @Test func truncatedLastRecordIsDropped() async throws {
        let dir = TemporaryDirectory()
        let results = try await fill(dir, count: 10)
        // A torn write: the tail of the last record never reached the disk.
        try JournalSurgeon(directory: dir.path, capacity: capacity).zero(from: results[9].lastPosition, plus: 80, count: 64)
        let (store, events) = try await reopen(dir)
        #expect(events.map(\.version) == Array(0..<9))
        #expect(store.stats().recoveryStopReason.contains("checksum"))
        // The journal continues where the last whole append ended.
        let next = try await store.append(to: "s", expectedVersion: .exact(8), events: [event("again")])
        #expect(next.firstVersion == 9 && next.firstPosition == results[9].firstPosition)
        try await store.close()
        let (again, all) = try await reopen(dir)
        #expect(all.count == 10 && text(of: all[9]) == "{\"v\":\"again\"}")
        try await again.close()
    }

    @Test func flippedByteInLastRecordIsDropped() async throws {
        let dir = TemporaryDirectory()
        let results = try await fill(dir, count: 10)
        try JournalSurgeon(directory: dir.path, capacity: capacity).modify(at: results[9].lastPosition, plus: 100) { $0 ^= 0x01 }
        let (store, events) = try await reopen(dir)
        #expect(events.count == 9)
        try await store.close()
    }

    @Test func corruptRecordInTheMiddleStopsRecoveryThere() async throws {
        let dir = TemporaryDirectory()
        let results = try await fill(dir, count: 10)
        try JournalSurgeon(directory: dir.path, capacity: capacity).modify(at: results[4].firstPosition, plus: 70) { $0 ^= 0xFF }
        let (store, events) = try await reopen(dir)
        #expect(events.map(\.version) == Array(0..<4))
        #expect(store.stats().recoveryStopReason.contains("position \(results[4].firstPosition)"))
        try await store.close()
    }

    @Test func tornMultiEventAppendDisappearsWhole() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        for i in 0..<3 { try await store.append(to: "a", events: [event("\(i)")]) }
        let batch = try await store.append(to: "b", events: (0..<5).map { event("b\($0)") })
        try await store.close()
        // Damage the fourth of the five records: the whole append must go, not just its tail.
        let fourth = try await { () async throws -> UInt64 in
            let reopened = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
            defer { Task { try? await reopened.close() } }
            return try await reopened.read(stream: "b").collect()[3].position
        }()
        try await Task.sleep(for: .milliseconds(50))
        try JournalSurgeon(directory: dir.path, capacity: capacity).modify(at: fourth, plus: 65) { $0 ^= 0x10 }
        let (again, events) = try await reopen(dir)
        #expect(events.map(\.stream) == ["a", "a", "a"])
        #expect(again.stats().recoveryStopReason.contains("dropped an incomplete append of 3 events"))
        #expect(batch.firstVersion == 0)
        let error = await ringstoreError { _ = try await again.read(stream: "b").collect() }
        #expect(error?.code == .streamNotFound)
        try await again.close()
    }

    @Test func leftoverRecordBehindATruncationIsNeverResurrected() async throws {
        let dir = TemporaryDirectory()
        // Session 1 writes A, B, C; B is torn by a crash.
        let results = try await fill(dir, count: 3)
        let surgeon = JournalSurgeon(directory: dir.path, capacity: capacity)
        try surgeon.modify(at: results[1].firstPosition, plus: 90) { $0 ^= 0x01 }
        // Session 2 recovers A, then writes D exactly where B was and as long as B,
        // so that C — intact, at the right position — directly follows D.
        do {
            let (store, events) = try await reopen(dir)
            #expect(events.count == 1)
            let d = try await store.append(to: "s", events: [EventData(type: "T", data: [UInt8](repeating: 0xDD, count: 100))])
            #expect(d.firstPosition == results[1].firstPosition)
            try await store.close()
        }
        // C was written by session 1, after D's session began: it must not come back.
        let (store, events) = try await reopen(dir)
        #expect(events.count == 2)
        #expect(events.last?.data.first == 0xDD)
        #expect(store.stats().recoveryStopReason.contains("session"))
        try await store.close()
    }

    @Test func damagedNewestHeaderSlotFallsBackAndBothDamagedIsReported() async throws {
        let dir = TemporaryDirectory()
        _ = try await fill(dir, count: 3)
        let path = dir.path + "/" + Journal.fileName
        let area = try RingFile.readHeaderArea(at: .init(path))
        let newest = try JournalHeader.newest(in: area, path: path)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: newest.slotOffset + 20)
        try handle.write(contentsOf: [0xFF, 0xFF])
        try handle.close()
        do {
            let (store, events) = try await reopen(dir)
            #expect(events.count == 3)
            try await store.close()
        }
        let handle2 = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        for offset in JournalHeader.slotOffsets {
            try handle2.seek(toOffset: offset + 20)
            try handle2.write(contentsOf: [0xFF, 0xFF])
        }
        try handle2.close()
        let error = await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity)) }
        #expect(error?.code == .corruptData)
        #expect(error?.path == path)
    }
}

@Suite struct RingWrapTests {
    let capacity: UInt64 = 64 << 10

    @Test func journalWrapsWithPaddingAndRecoversOnlyTheCurrentLap() async throws {
        let dir = TemporaryDirectory()
        var config = Configuration.testing(capacity: capacity)
        config.maxEventSize = 4000
        let store = try await EventStore.open(at: dir.path, configuration: config)
        var generator = SplitMix64(seed: 7)
        var appended: [(AppendResult, [UUID])] = []
        var paddedLaps = Set<UInt64>()
        // About four laps of variously sized appends, checkpointing as a splitter would.
        while appended.last.map({ $0.0.lastPosition }) ?? 0 < 4 * capacity {
            let count = Int(generator.next() % 4) + 1
            let events = (0..<count).map { _ in
                EventData(type: "T", data: [UInt8](repeating: 1, count: Int(generator.next() % 3000)))
            }
            let result = try await store.append(to: "w\(generator.next() % 3)", events: events)
            if let previous = appended.last, result.firstPosition / capacity != previous.0.lastPosition / capacity {
                paddedLaps.insert(result.firstPosition / capacity)
            }
            appended.append((result, events.map(\.id)))
            // Keep about half the ring in use.
            if let keep = appended.last(where: { result.lastPosition - $0.0.firstPosition > capacity / 2 }) {
                try store.journal.advanceCheckpoint(to: keep.0.firstPosition)
            }
        }
        #expect(paddedLaps.count >= 3)
        let checkpoint = store.stats().checkpointPosition
        let expected = appended.filter { $0.0.firstPosition >= checkpoint }.flatMap(\.1)
        #expect(try await store.readAll().collect().map(\.id) == expected)
        try await store.close()

        // Recovery starts at the checkpoint and stops at the stale records of the previous lap.
        let reopened = try await EventStore.open(at: dir.path, configuration: config)
        #expect(try await reopened.readAll().collect().map(\.id) == expected)
        // Whatever the bytes after the end are (an older lap's record, or the middle
        // of one), the scan stops at the journal's end, not a lap later.
        let reason = reopened.stats().recoveryStopReason
        #expect(reason.hasPrefix("position \(store.stats().durablePosition):"), "\(reason)")
        try await reopened.close()
    }

    @Test func fullRingMakesAppendsWaitThenFailClearlyAndRecoverOnceSpaceFrees() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        var acknowledged: [UUID] = []
        var failure: RingstoreError?
        let started = ContinuousClock.now
        while failure == nil {
            let e = EventData(type: "T", data: [UInt8](repeating: 2, count: 1000))
            do {
                try await store.append(to: "full", events: [e])
                acknowledged.append(e.id)
            } catch let error as RingstoreError {
                failure = error
            }
        }
        #expect(failure?.code == .journalFull)
        #expect(failure?.message.contains("journal full: waited 0.2 s") == true)
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        #expect(acknowledged.count > 55)
        #expect(try await store.read(stream: "full").collect().map(\.id) == acknowledged)

        // Once the records are checkpointed (by the splitter, here by hand), appends go on.
        try store.journal.advanceCheckpoint(to: store.stats().durablePosition)
        try await store.append(to: "full", events: [event("after")])
        #expect(try await store.currentVersion(of: "full") == UInt64(acknowledged.count))
        try await store.close()
    }

    @Test func anAppendWaitingForSpaceSucceedsWhenSpaceFreesInTime() async throws {
        let dir = TemporaryDirectory()
        var config = Configuration.testing(capacity: capacity)
        config.journalFullWait = .seconds(10)
        let store = try await EventStore.open(at: dir.path, configuration: config)
        while store.stats().journalBytesInUse + 1200 <= capacity {
            try await store.append(to: "f", events: [EventData(type: "T", data: [UInt8](repeating: 3, count: 1000))])
        }
        let waiting = Task { try await store.append(to: "f", events: [EventData(type: "T", data: [UInt8](repeating: 4, count: 1000))]) }
        try await Task.sleep(for: .milliseconds(100))
        try store.journal.advanceCheckpoint(to: store.stats().durablePosition)
        let result = try await waiting.value
        #expect(result.firstPosition >= capacity)
        try await store.close()
    }
}
