import Foundation
import RingstoreJSONLines
import Testing
@testable import Ringstore

/// Inputs the fuzz targets (tools/fuzz) found or showed to matter, kept as tests,
/// and a replay of the kept fuzz corpus through the decoders.
@Suite struct FuzzRegressionTests {
    func events(_ count: Int, data: [UInt8] = Array("{\"a\":1}".utf8)) -> [RecordedEvent] {
        (0..<count).map { i in
            RecordedEvent(stream: "s", version: UInt64(i), position: UInt64(4096 + 64 * i), id: UUID(), type: "T", data: data,
                          metadata: [], contentType: .json, timestampNanoseconds: 1)
        }
    }

    /// Rewrites a header field of an encoded block and fixes its header checksum.
    func patch(_ block: inout [UInt8], offset: Int, _ value: some FixedWidthInteger) {
        withUnsafeBytes(of: value.littleEndian) { block.replaceSubrange(offset..<(offset + MemoryLayout.size(ofValue: value)), with: $0) }
        let crc = block.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<36])) }
        withUnsafeBytes(of: crc.littleEndian) { block.replaceSubrange(36..<40, with: $0) }
    }

    /// Found by the stream-block target: a block whose first version is so high
    /// that first + index overflows trapped the process instead of failing.
    @Test func blockWhoseVersionsWouldOverflowIsRejected() throws {
        var block: [UInt8] = []
        StreamBlock.encode(events(3)[...], compress: false, into: &block)
        patch(&block, offset: 8, UInt64.max - 1)
        #expect(StreamBlock.parseHeader(block) == .failure(.badLengths))
        #expect(throws: Never.self) { _ = StreamBlock.decode(block, stream: "s") }
        var highest: [UInt8] = []
        StreamBlock.encode(events(3)[...], compress: false, into: &highest)
        patch(&highest, offset: 8, UInt64.max - 3)
        #expect(try StreamBlock.decode(highest, stream: "s").get().map(\.version) == [.max - 3, .max - 2, .max - 1])
    }

    /// A compressed block claiming far more raw bytes than LZ4 can expand to is
    /// damage; believing it allocated up to 64 MiB for a few stored bytes.
    @Test func compressedBlockClaimingAnImpossibleRawLengthIsRejected() throws {
        var block: [UInt8] = []
        StreamBlock.encode(events(40)[...], compress: true, into: &block)
        let header = try StreamBlock.parseHeader(block).get()
        #expect(header.compressed)
        patch(&block, offset: 28, UInt32(header.storedLength * 256 + 65))
        #expect(StreamBlock.parseHeader(block) == .failure(.badLengths))
    }

    /// The bound above never rejects what LZ4 really produces at its best ratio.
    @Test func maximallyCompressibleBlockStillDecodes() throws {
        var block: [UInt8] = []
        let zeros = events(1, data: [UInt8](repeating: 0, count: StreamBlock.maxRawLength - 100))
        StreamBlock.encode(zeros[...], compress: true, into: &block)
        let header = try StreamBlock.parseHeader(block).get()
        #expect(header.compressed && header.rawLength > 200 * header.storedLength)
        #expect(try StreamBlock.decode(block, stream: "s").get().first?.data == zeros[0].data)
    }

    /// A header slot with a valid checksum but a ring capacity of 0 would divide
    /// by zero in every position calculation once opened.
    @Test func headerSlotWithImpossibleValuesIsRejected() {
        for (capacity, checkpoint) in [(UInt64(0), UInt64(0)), (1000, 0), (1 << 20, UInt64.max - 10)] {
            let slot = JournalHeader(sequence: 1, capacity: capacity, checkpoint: checkpoint, epoch: 1, closedCleanly: true, endAtClose: 0).encoded()
            guard case .failure(.implausible) = JournalHeader.decode(slot[...]) else {
                Issue.record("capacity \(capacity), checkpoint \(checkpoint) accepted")
                continue
            }
            var area = [UInt8](repeating: 0, count: 4096)
            area.replaceSubrange(0..<64, with: slot)
            let error = #expect(throws: RingstoreError.self) { try JournalHeader.newest(in: area, path: "j") }
            #expect(error?.code == .corruptData)
        }
    }

    /// Every input kept in tools/fuzz/corpus goes through its decoder without trapping.
    @Test func keptFuzzCorpusDecodesWithoutTrapping() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/fuzz/corpus").path
        var replayed = 0
        for target in ["journal-record", "stream-block", "header-slots", "segment-summary", "json-lines"] {
            let folder = corpus + "/" + target
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            #expect(!files.isEmpty, "no kept corpus for \(target)")
            for file in files {
                let input = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file)).dropFirst())  // mode byte
                switch target {
                case "journal-record":
                    input.withUnsafeBytes { b in
                        let position = b.count >= 16 ? UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) : 0
                        if case .event(let header) = JournalRecord.inspect(b, expectedPosition: position) {
                            _ = JournalRecord.decodeEvent(b, header)
                        }
                    }
                case "stream-block": _ = StreamBlock.decode(input, stream: "s")
                case "header-slots": _ = try? JournalHeader.newest(in: input, path: "fuzz")
                case "segment-summary": _ = SegmentSummary.decode(input, segment: 5)
                default: _ = try? JSONLine(input)
                }
                replayed += 1
            }
        }
        #expect(replayed > 0)
    }
}
