import Foundation
import Testing
import SystemPackage
@testable import Ringstore

@Suite struct RecordCodecTests {
    /// Encodes one event record at `position` into a fresh buffer of `bufferSize` bytes (default: exactly the record).
    func encode(_ event: EventData, stream: String = "stream-1", version: UInt64 = 7, position: UInt64 = 4096,
                endOfAppend: Bool = true, bufferSize: Int? = nil) -> [UInt8] {
        let length = JournalRecord.eventLength(streamCount: stream.utf8.count, typeCount: event.type.utf8.count,
                                               metadataCount: event.metadata.count, dataCount: event.data.count)
        var buffer = [UInt8](repeating: 0xEE, count: bufferSize ?? length)
        var stream = stream
        var type = event.type
        buffer.withUnsafeMutableBytes { out in
            stream.withUTF8 { s in
                type.withUTF8 { t in
                    event.metadata.withUnsafeBytes { m in
                        event.data.withUnsafeBytes { d in
                            JournalRecord.encodeEvent(
                                into: out.baseAddress!, length: length,
                                fields: .init(position: position, epoch: 3, version: version, id: event.id,
                                              timestampNanoseconds: 1_700_000_000_123_456_789,
                                              json: event.contentType == .json, endOfAppend: endOfAppend),
                                stream: UnsafeRawBufferPointer(s), type: UnsafeRawBufferPointer(t), metadata: m, data: d)
                        }
                    }
                }
            }
        }
        return buffer
    }

    func inspect(_ bytes: [UInt8], at position: UInt64 = 4096) -> JournalRecord.Inspection {
        bytes.withUnsafeBytes { JournalRecord.inspect($0, expectedPosition: position) }
    }

    @Test func roundTrip() throws {
        let original = EventData(type: "OrderPlaced", data: Array("{\"total\":42}".utf8), metadata: [9, 8, 7], contentType: .json)
        let bytes = encode(original)
        #expect(bytes.count % 8 == 0)
        guard case .event(let header) = inspect(bytes) else { Issue.record("not an event"); return }
        #expect(header.epoch == 3 && header.endOfAppend && header.version == 7)
        let decoded = bytes.withUnsafeBytes { JournalRecord.decodeEvent($0, header) }
        #expect(decoded.stream == "stream-1")
        #expect(decoded.id == original.id)
        #expect(decoded.type == original.type)
        #expect(decoded.data == original.data)
        #expect(decoded.metadata == original.metadata)
        #expect(decoded.contentType == .json)
        #expect(decoded.version == 7 && decoded.position == 4096)
        #expect(decoded.timestampNanoseconds == 1_700_000_000_123_456_789)
    }

    @Test func largestEventAndEmptyPayloadRoundTrip() throws {
        let maxStream = String(repeating: "s", count: NameRules.maxStreamNameBytes)
        let maxType = String(repeating: "t", count: NameRules.maxEventTypeBytes)
        for data in [[UInt8](), (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }] {
            let original = EventData(type: maxType, data: data, metadata: [], contentType: .binary)
            let bytes = encode(original, stream: maxStream)
            guard case .event(let header) = inspect(bytes) else { Issue.record("not an event"); return }
            let decoded = bytes.withUnsafeBytes { JournalRecord.decodeEvent($0, header) }
            #expect(decoded.stream == maxStream && decoded.type == maxType && decoded.data == data)
            #expect(decoded.contentType == .binary)
        }
    }

    @Test func everyFlippedByteIsDetected() {
        let bytes = encode(EventData(type: "T", data: Array("hello, world".utf8), metadata: [1]))
        for offset in 0..<bytes.count {
            var damaged = bytes
            damaged[offset] ^= 0x40
            if case .event = inspect(damaged) {
                // Bytes past the payload are zero padding and are covered too; nothing may pass.
                Issue.record("flip at offset \(offset) not detected")
            }
        }
    }

    @Test func staleAndTruncatedRecordsAreRejected() {
        let bytes = encode(event("x"))
        guard case .invalid(let stale) = inspect(bytes, at: 4096 + 65536) else { Issue.record("stale accepted"); return }
        #expect(stale.contains("earlier lap"))
        guard case .invalid(let short) = inspect(Array(bytes.dropLast(8))) else { Issue.record("truncated accepted"); return }
        #expect(short.contains("length"))
        guard case .invalid(let empty) = inspect([UInt8](repeating: 0, count: 64)) else { Issue.record("zeros accepted"); return }
        #expect(empty.contains("no record"))
    }

    @Test func paddingFillsTheTail() {
        var tail = [UInt8](repeating: 0xAB, count: 200)
        tail.withUnsafeMutableBytes { JournalRecord.encodePadding(into: $0.baseAddress!, length: 200, position: 1000, epoch: 2) }
        guard case .padding(let length, let epoch) = inspect(tail, at: 1000) else { Issue.record("not padding"); return }
        #expect(length == 200 && epoch == 2)
        // A padding record must reach exactly to the ring's end.
        guard case .invalid = inspect(tail + [0, 0, 0, 0, 0, 0, 0, 0], at: 1000) else { Issue.record("short padding accepted"); return }
    }

    @Test func headerSlotsRoundTripAndRejectDamage() throws {
        let header = JournalHeader(sequence: 9, capacity: 1 << 20, checkpoint: 4096, epoch: 4, closedCleanly: true, endAtClose: 8192)
        let bytes = header.encoded()
        #expect(try JournalHeader.decode(bytes[...]).get() == header)
        for offset in 0..<bytes.count {
            var damaged = bytes
            damaged[offset] ^= 1
            #expect((try? JournalHeader.decode(damaged[...]).get()) == nil, "flip at \(offset)")
        }
        // The newest whole slot wins; a torn newer slot falls back to the older one.
        var area = [UInt8](repeating: 0, count: 4096)
        var older = header
        older.sequence = 8
        area.replaceSubrange(Int(older.slotOffset)..<Int(older.slotOffset) + 64, with: older.encoded())
        area.replaceSubrange(Int(header.slotOffset)..<Int(header.slotOffset) + 64, with: bytes)
        #expect(try JournalHeader.newest(in: area, path: "j").sequence == 9)
        area[Int(header.slotOffset) + 30] ^= 0xFF
        #expect(try JournalHeader.newest(in: area, path: "j").sequence == 8)
    }

    @Test func ringSegmentsSplitAtTheEnd() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 64 << 10))
        let ring = store.journal.ring
        #expect(ring.segments(from: 100, count: 50) == (100..<150, nil))
        let wrapped = ring.segments(from: 65536 * 3 + 65500, count: 100)
        #expect(wrapped.first == 65500..<65536)
        #expect(wrapped.second == 0..<64)
        let exact = ring.segments(from: 65536 - 64, count: 64)
        #expect(exact.first == 65472..<65536 && exact.second == nil)
        try await store.close()
    }
}

@Suite struct EventIDTests {
    @Test func generatedIDsAreUniqueVersion4UUIDs() async {
        let ids = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<8 { group.addTask { (0..<20_000).map { _ in UUID.newEventID() } } }
            var all: [UUID] = []
            for await chunk in group { all += chunk }
            return all
        }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.uuidString.dropFirst(14).first == "4" })
        #expect(ids.allSatisfy { "89AB".contains($0.uuidString.dropFirst(19).first!) })
        #expect(EventData(type: "T", data: []).id != EventData(type: "T", data: []).id)
    }
}

@Suite struct RingZeroFillTests {
    /// A flush ending inside a page fills the rest of that page with zeros (so the
    /// kernel never reads an uncached page to merge a partial write), but never
    /// past the end of the free space, and not at all when it ends on a page boundary.
    @Test func writesFillTheirLastPageWithZerosWithinTheFreeSpace() throws {
        let dir = TemporaryDirectory()
        let capacity: UInt64 = 64 << 10
        let ring = try RingFile.create(at: FilePath(dir.child("ring")), capacity: capacity, header: [UInt8](repeating: 7, count: 64))
        func bytes(_ position: UInt64, _ count: Int) throws -> [UInt8] {
            let file = try StorageFile.open(FilePath(dir.child("ring")))
            defer { file.close() }
            var out = [UInt8](repeating: 0, count: count)
            _ = try out.withUnsafeMutableBytes { try file.read(into: $0, at: RingFile.headerAreaSize + position % capacity) }
            return out
        }
        let ones = [UInt8](repeating: 1, count: 5000)
        // Old bytes (a previous lap) everywhere, then a write ending at 5000, inside the second page.
        try [UInt8](repeating: 9, count: Int(capacity)).withUnsafeBytes { try ring.write($0, at: 0) }
        try ones.withUnsafeBytes { try ring.write($0, at: 0, zeroFillingPageBefore: capacity) }
        #expect(try bytes(0, 5000) == ones)
        #expect(try bytes(5000, 8192 - 5000).allSatisfy { $0 == 0 }, "the rest of the page is zeros")
        #expect(try bytes(8192, 16).allSatisfy { $0 == 9 }, "the next page is left alone")
        // The free space ends at 6000: the fill stops there.
        try ones.withUnsafeBytes { try ring.write($0, at: 8192, zeroFillingPageBefore: 8192 + 5000 + 1000) }
        #expect(try bytes(8192 + 5000, 1000).allSatisfy { $0 == 0 })
        #expect(try bytes(8192 + 6000, 16).allSatisfy { $0 == 9 }, "not past the free space")
        // Ending on a page boundary, across the ring's end: nothing is filled.
        try [UInt8](repeating: 2, count: 8192).withUnsafeBytes { try ring.write($0, at: capacity - 4096, zeroFillingPageBefore: 10 * capacity) }
        #expect(try bytes(capacity - 4096, 16).allSatisfy { $0 == 2 } && bytes(0, 4096).allSatisfy { $0 == 2 })
        #expect(try bytes(4096, 16).allSatisfy { $0 == 1 }, "the page after the end is left alone")
        _ = ring  // unmapped and closed when released
    }
}

@Suite struct RingRecordCopyTests {
    /// A record copied with `pread` is the mapped record, byte for byte: a small
    /// one (one read), one longer than the first read asks for (a second read
    /// grows the buffer), and one ending at the ring's end with fewer bytes left
    /// there than the first read would ask for; positions of a later lap map
    /// to the same bytes. A length that runs past the ring's end returns what
    /// there is, and inspection names the damage.
    @Test func copiedRecordsAreTheMappedOnes() throws {
        let dir = TemporaryDirectory()
        let capacity: UInt64 = 64 << 10
        let ring = try RingFile.create(at: FilePath(dir.child("ring")), capacity: capacity, header: [UInt8](repeating: 7, count: 64))
        let lap = 3 * capacity
        let small = RecordCodecTests().encode(EventData(type: "T", data: Array(repeating: 5, count: 100)), position: lap)
        let large = RecordCodecTests().encode(EventData(type: "T", data: (0..<3000).map { UInt8(truncatingIfNeeded: $0) }), position: lap + 4096)
        let tailLength = JournalRecord.eventLength(streamCount: 8, typeCount: 1, metadataCount: 0, dataCount: 300)
        let tailStart = capacity - UInt64(tailLength)
        let tail = RecordCodecTests().encode(EventData(type: "T", data: Array(repeating: 6, count: 300)), position: lap + tailStart)
        #expect(large.count > RingFile.copiedRecordProbe && tail.count < RingFile.copiedRecordProbe)
        for (bytes, physical) in [(small, UInt64(0)), (large, 4096), (tail, tailStart)] {
            try bytes.withUnsafeBytes { try ring.write($0, at: physical) }
        }
        var scratch: [UInt8] = []
        for (bytes, physical) in [(small, UInt64(0)), (large, 4096), (tail, tailStart)] {
            let count = try ring.copyRecord(at: lap + physical, into: &scratch)
            try #require(count >= bytes.count, "record at \(physical): \(count) bytes copied")
            #expect(Array(scratch[..<bytes.count]) == bytes)
            let mapped = ring.withMappedBytes(physical: physical, count: bytes.count) { Array($0) }
            #expect(Array(scratch[..<bytes.count]) == mapped)
            let inspection = scratch.withUnsafeBytes { JournalRecord.inspect(UnsafeRawBufferPointer(rebasing: $0[..<count]), expectedPosition: lap + physical) }
            guard case .event(let header) = inspection else { Issue.record("record at \(physical): \(inspection)"); continue }
            #expect(header.length == bytes.count)
        }
        // The tail record's length made to run past the ring's end.
        var damaged = tail
        damaged.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(tailLength + 8).littleEndian, toByteOffset: 0, as: UInt32.self) }
        try damaged.withUnsafeBytes { try ring.write($0, at: tailStart) }
        let count = try ring.copyRecord(at: lap + tailStart, into: &scratch)
        #expect(count == tailLength, "what lies before the ring's end")
        let inspection = scratch.withUnsafeBytes { JournalRecord.inspect(UnsafeRawBufferPointer(rebasing: $0[..<count]), expectedPosition: lap + tailStart) }
        guard case .invalid(let reason) = inspection else { Issue.record("damage not found: \(inspection)"); return }
        #expect(reason.contains("not a valid record length"))
    }
}
