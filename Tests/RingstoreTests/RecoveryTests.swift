import Foundation
import Testing
@_spi(FaultTesting) @testable import Ringstore

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

    func read(at position: UInt64, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: fileOffset(ofPosition: position))
        return [UInt8](try handle.read(upToCount: count) ?? Data())
    }

    func write(_ bytes: [UInt8], at position: UInt64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: fileOffset(ofPosition: position))
        try handle.write(contentsOf: bytes)
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

    /// Appends `count` single-event appends to stream "s" with the splitter held
    /// back, then stops as a crash would, so that the records are only in the
    /// journal; returns their results.
    func fill(_ dir: TemporaryDirectory, count: Int, size: Int = 100) async throws -> [AppendResult] {
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        store.splitter.pause()
        var results: [AppendResult] = []
        for i in 0..<count {
            results.append(try await store.append(to: "s", events: [EventData(type: "T", data: [UInt8](repeating: UInt8(i), count: size))]))
        }
        await store.abandonForTesting()
        return results
    }

    func reopen(_ dir: TemporaryDirectory) async throws -> (EventStore, [RecordedEvent]) {
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        return (store, try await store.readAll().collect())
    }

    /// Damage to the last record of a journal, as a crash or bad media leaves it.
    enum LastRecordDamage: String, CaseIterable, Sendable {
        /// A torn write: the tail of the last record never reached the disk.
        case torn
        /// One flipped bit in the last record's body.
        case flipped
    }

    /// A damaged last record is dropped, recovery says where it stopped, and the
    /// journal continues where the damaged record began; what is appended there
    /// survives the next reopen.
    @Test(arguments: LastRecordDamage.allCases)
    func damagedLastRecordIsDropped(_ damage: LastRecordDamage) async throws {
        let dir = TemporaryDirectory()
        let results = try await fill(dir, count: 10)
        let surgeon = JournalSurgeon(directory: dir.path, capacity: capacity)
        switch damage {
        case .torn: try surgeon.zero(from: results[9].lastPosition, plus: 80, count: 64)
        case .flipped: try surgeon.modify(at: results[9].lastPosition, plus: 100) { $0 ^= 0x01 }
        }
        let (store, events) = try await reopen(dir)
        #expect(events.map(\.version) == Array(0..<9))
        #expect(events.map(\.position) == results.prefix(9).map(\.firstPosition))
        let reason = store.stats().recoveryStopReason
        #expect(reason.contains("checksum") && reason.contains("position \(results[9].firstPosition)"), "\(reason)")
        let next = try await store.append(to: "s", expectedVersion: .exact(8), events: [event("again")])
        #expect(next.firstVersion == 9 && next.firstPosition == results[9].firstPosition)
        try await store.close()
        let (again, all) = try await reopen(dir)
        #expect(all.count == 10 && text(of: all[9]) == "{\"v\":\"again\"}")
        try await again.close()
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
        store.splitter.pause()
        for i in 0..<3 { try await store.append(to: "a", events: [event("\(i)")]) }
        let batch = try await store.append(to: "b", events: (0..<5).map { event("b\($0)") })
        let fourth = try await store.readAll().collect()[6].position
        await store.abandonForTesting()
        // Damage the fourth of the five records: the whole append must go, not just its tail.
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
        let c = try surgeon.read(at: results[2].firstPosition, count: 1024)
        // Session 2 recovers A, then writes D exactly where B was and as long as B,
        // so that C — intact, at the right position — directly follows D.
        do {
            let (store, events) = try await reopen(dir)
            store.splitter.pause()
            #expect(events.count == 1)
            let d = try await store.append(to: "s", events: [EventData(type: "T", data: [UInt8](repeating: 0xDD, count: 100))])
            #expect(d.firstPosition == results[1].firstPosition)
            await store.abandonForTesting()
        }
        // The flush that wrote D zero-filled the rest of its page, over C; a crash
        // can tear that fill, so put C back as session 1 left it.
        try surgeon.write(c, at: results[2].firstPosition)
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

    @Test func journalWrapsWithPaddingAndEverythingStaysReadable() async throws {
        let dir = TemporaryDirectory()
        var config = Configuration.testing(capacity: capacity)
        config.maxEventSize = 4000
        let store = try await EventStore.open(at: dir.path, configuration: config)
        var generator = SeededRandom(seed: 7)
        var appended: [(AppendResult, [UUID])] = []
        var paddedLaps = Set<UInt64>()
        // About six laps of variously sized appends; the splitter frees the ring as it goes.
        while appended.last.map({ $0.0.lastPosition }) ?? 0 < 6 * capacity {
            let count = Int(generator.next() % 4) + 1
            let events = (0..<count).map { _ in
                EventData(type: "T", data: [UInt8](repeating: 1, count: Int(generator.next() % 3000)))
            }
            let result = try await store.append(to: "w\(generator.next() % 3)", events: events)
            if let previous = appended.last, result.firstPosition / capacity != previous.0.lastPosition / capacity {
                paddedLaps.insert(result.firstPosition / capacity)
            }
            appended.append((result, events.map(\.id)))
        }
        #expect(paddedLaps.count >= 4)
        #expect(store.stats().checkpointPosition > 4 * capacity)
        let expected = appended.flatMap(\.1)
        #expect(try await store.readAll().collect().map(\.id) == expected)
        #expect(try await store.readAll(from: .end, direction: .backwards).collect().map(\.id) == expected.reversed())
        // Stop as a crash would: recovery replays the journal from the checkpoint, the
        // splitter re-copies what it had copied but not checkpointed, and nothing repeats.
        await store.abandonForTesting()
        let end = store.stats().durablePosition
        let reopened = try await EventStore.open(at: dir.path, configuration: config)
        // Past the end lie records of earlier laps (or the middle of one): the scan stops right at the end.
        #expect(reopened.stats().recoveryStopReason.hasPrefix("position \(end):"), "\(reopened.stats().recoveryStopReason)")
        #expect(try await reopened.readAll().collect().map(\.id) == expected)
        var perStream: [String: [UUID]] = [:]
        for event in try await reopened.readAll().collect() { perStream[event.stream, default: []].append(event.id) }
        for (stream, ids) in perStream {
            #expect(try await reopened.read(stream: stream).collect().map(\.id) == ids)
        }
        try await reopened.close()
    }

    @Test func fullRingMakesAppendsWaitThenFailClearlyAndRecoverOnceSpaceFrees() async throws {
        let dir = TemporaryDirectory()
        var config = Configuration.testing(capacity: capacity)
        config.journalFullWait = .milliseconds(200)  // the subject; the paused splitter frees nothing meanwhile
        let store = try await EventStore.open(at: dir.path, configuration: config)
        store.splitter.pause()
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
        #expect(store.stats().appendsWaitedForSpace == 1)
        // Once the splitter copies the records out and checkpoints, appends go on (they
        // wait for it as long as it takes a loaded machine); nothing was lost.
        store.setJournalFullWait(generousWait)
        store.splitter.resume()
        try await store.append(to: "full", events: [event("after")])
        #expect(try await store.read(stream: "full").collect().map(\.id).dropLast() == acknowledged[...])
        #expect(try store.currentVersion(of: "full") == UInt64(acknowledged.count))
        try await store.close()
    }

    @Test func anAppendWaitingForSpaceSucceedsWhenSpaceFreesInTime() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        store.splitter.pause()
        var filled = 0
        while store.stats().journalBytesInUse + 1200 <= capacity {
            try await store.append(to: "f", events: [EventData(type: "T", data: [UInt8](repeating: 3, count: 1000))])
            filled += 1
        }
        let last = EventData(type: "T", data: [UInt8](repeating: 4, count: 1000))
        let waiting = Task { try await store.append(to: "f", events: [last]) }
        // It waits for space (the paused splitter frees none) until the splitter resumes.
        try await waitUntil("the append to wait for ring space") { store.stats().appendsWaitedForSpace == 1 }
        store.splitter.resume()
        let result = try await waiting.value
        #expect(result.firstVersion == UInt64(filled) && result.lastVersion == UInt64(filled))
        #expect(result.firstPosition >= capacity, "it went into the space the checkpoint freed, on the next lap")
        #expect(store.stats().appendsWaitedForSpace == 1)
        // Everything is there once, in order, with its own data.
        let stored = try await store.read(stream: "f").collect()
        #expect(stored.map(\.version) == Array(0...UInt64(filled)))
        #expect(stored.dropLast().allSatisfy { $0.data == [UInt8](repeating: 3, count: 1000) })
        #expect(stored.last?.id == last.id && stored.last?.data == last.data && stored.last?.position == result.firstPosition)
        try await store.close()
    }
}
