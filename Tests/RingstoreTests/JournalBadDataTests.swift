import Foundation
import Testing
@testable import Ringstore

extension JournalSurgeon {
    /// Changes the record at `position` with `change` and puts a matching CRC
    /// back, as a bug or a crafted file could leave it (damage alone would fail
    /// the CRC and stop recovery long before any arithmetic).
    func rewriteRecord(at position: UInt64, _ change: (inout [UInt8]) -> Void) throws {
        let lengthBytes = try read(at: position, count: 4)
        let length = Int(lengthBytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
        var bytes = try read(at: position, count: length)
        change(&bytes)
        let covered = bytes[16] & 0x0F == JournalRecord.kindPadding ? JournalRecord.paddingSize : length
        let crc = CRC32C.checksum(Array(bytes[8..<covered]), continuing: CRC32C.checksum(Array(bytes[0..<4])))
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
        try write(bytes, at: position)
    }

    /// Changes the newest header slot with `change` and puts a matching CRC
    /// back; returns the slot's offset.
    @discardableResult
    func rewriteNewestHeader(_ change: (inout JournalHeader) -> Void) throws -> UInt64 {
        let area = try RingFile.readHeaderArea(at: .init(path))
        var header = try JournalHeader.newest(in: area, path: path)
        let offset = JournalHeader.slotOffsets.first { slot in
            (try? JournalHeader.decode(area[Int(slot)..<Int(slot) + JournalHeader.slotSize]).get()) == header
        }!
        change(&header)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: header.encoded())
        return offset
    }
}

/// Journal and header values that no session writes — the largest versions,
/// sequence numbers and session numbers, with valid CRCs — are reported or
/// end recovery; they never reach arithmetic that traps.
@Suite struct JournalBadDataTests {
    let capacity: UInt64 = 1 << 20

    /// Two appends to "s", then one to `last`; the store is then abandoned, so
    /// that every record is still in the journal. Returns the last append.
    func fill(_ dir: TemporaryDirectory, last: String = "s") async throws -> AppendResult {
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        store.splitter.pause()
        try await store.append(to: "s", events: [event("0")])
        try await store.append(to: "s", events: [event("1")])
        let result = try await store.append(to: last, events: [event("last")])
        await store.abandonForTesting()
        return result
    }

    @Test(arguments: [UInt64.max, UInt64.max - 1, UInt64.max / 2 + 1])
    func anImplausibleHeaderSequenceIsReported(sequence: UInt64) async throws {
        let dir = TemporaryDirectory()
        _ = try await fill(dir)
        let surgeon = JournalSurgeon(directory: dir.path, capacity: capacity)
        let offset = try surgeon.rewriteNewestHeader { $0.sequence = sequence }
        let error = await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity)) }
        #expect(error?.code == .corruptData)
        #expect(error?.path == surgeon.path)
        #expect(error?.offset == offset)
        #expect(error?.message.contains("sequence") == true, "\(String(describing: error))")
    }

    @Test(arguments: [UInt32.max, UInt32.max - 1])
    func aHeaderSessionNumberWithNoRoomForAnotherIsReported(epoch: UInt32) async throws {
        let dir = TemporaryDirectory()
        _ = try await fill(dir)
        let surgeon = JournalSurgeon(directory: dir.path, capacity: capacity)
        let offset = try surgeon.rewriteNewestHeader { $0.epoch = epoch }
        let error = await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity)) }
        #expect(error?.code == .corruptData)
        #expect(error?.path == surgeon.path)
        #expect(error?.offset == offset)
    }

    /// A record from a session later than any the header allows (only the
    /// newest header slot can lag one session behind) ends recovery there.
    @Test(arguments: [UInt32.max, UInt32.max - 1, 1_000])
    func aRecordFromAnImpossibleSessionEndsRecovery(epoch: UInt32) async throws {
        let dir = TemporaryDirectory()
        let last = try await fill(dir)
        let surgeon = JournalSurgeon(directory: dir.path, capacity: capacity)
        try surgeon.rewriteRecord(at: last.firstPosition) { bytes in
            withUnsafeBytes(of: epoch.littleEndian) { bytes.replaceSubrange(20..<24, with: $0) }
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        #expect(try await store.read(stream: "s").collect().count == 2, "recovery kept what came before")
        #expect(store.stats().recoveryStopReason.contains("position \(last.firstPosition)"), "\(store.stats().recoveryStopReason)")
        // The next session's records carry a session number recovery accepts.
        let next = try await store.append(to: "s", events: [event("next")])
        #expect(next.firstPosition == last.firstPosition)
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        #expect(try await reopened.read(stream: "s").collect().count == 3)
        try await reopened.close()
    }

    /// The first record of a stream in the ring sets its version; one with no
    /// room for the stream's next version ends recovery there.
    @Test(arguments: [UInt64.max, UInt64(1) << 63, (UInt64(1) << 63) - 1])
    func aRecordWithAnImpossibleVersionEndsRecovery(version: UInt64) async throws {
        let dir = TemporaryDirectory()
        let last = try await fill(dir, last: "big")
        let surgeon = JournalSurgeon(directory: dir.path, capacity: capacity)
        try surgeon.rewriteRecord(at: last.firstPosition) { bytes in
            withUnsafeBytes(of: version.littleEndian) { bytes.replaceSubrange(24..<32, with: $0) }
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        #expect(try await store.read(stream: "s").collect().count == 2)
        #expect(store.stats().recoveryStopReason.contains("position \(last.firstPosition)"), "\(store.stats().recoveryStopReason)")
        try await store.close()
    }

    /// A stream recovered at the largest version a stream can reach refuses
    /// appends with an error rather than overflow.
    @Test func anAppendPastTheLargestVersionIsRefused() async throws {
        let dir = TemporaryDirectory()
        let last = try await fill(dir, last: "big")
        let surgeon = JournalSurgeon(directory: dir.path, capacity: capacity)
        let largest: UInt64 = (1 << 63) - 2
        try surgeon.rewriteRecord(at: last.firstPosition) { bytes in
            withUnsafeBytes(of: largest.littleEndian) { bytes.replaceSubrange(24..<32, with: $0) }
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        store.splitter.pause()  // it would find the stream's file does not start at that version
        for expected in [ExpectedVersion.any, .exact(largest), .streamExists] {
            let error = await ringstoreError { try await store.append(to: "big", expectedVersion: expected, events: [event("more")]) }
            #expect(error?.code == .corruptData)
            #expect(error?.stream == "big")
        }
        #expect(try await store.append(to: "s", events: [event("other")]).firstVersion == 2, "other streams are unaffected")
        try? await store.close()
    }
}
