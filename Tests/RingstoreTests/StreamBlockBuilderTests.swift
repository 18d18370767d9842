import Foundation
import Testing
@testable import Ringstore

/// Where ``StreamBlock/Builder`` cuts blocks: before an entry that would pass
/// the limit; an entry larger than the limit alone in its block.
@Suite struct StreamBlockBuilderTests {
    static func event(_ version: UInt64, bytes: Int) -> RecordedEvent {
        RecordedEvent(stream: "s", version: version, position: version * 1000, id: UUID(), type: "T",
                      data: Array(repeating: 7, count: bytes), metadata: [], contentType: .binary, timestampNanoseconds: 0)
    }

    @Test func blocksAreCutBeforeTheLimitAndJoinedWhole() {
        let entry = StreamBlock.entryHeaderSize + 1 + 100  // type "T", 100 data bytes
        var builder = StreamBlock.Builder(limit: 2 * entry)
        for v in 0..<3 { builder.add(Self.event(UInt64(v), bytes: 100)) }
        builder.add(Self.event(3, bytes: 10 * entry))  // larger than the limit: a block of its own
        builder.add(Self.event(4, bytes: 100))
        let blocks = builder.finish()
        #expect(blocks.map(\.count) == [2, 1, 1, 1])
        #expect(blocks.map(\.firstVersion) == [0, 2, 3, 4])
        #expect(blocks.map(\.firstPosition) == [0, 2000, 3000, 4000])

        // Raw blocks join while they fit, as the segment mover joins entries.
        var joined = StreamBlock.Builder(limit: 3 * entry)
        joined.add(blocks[0])
        joined.add(blocks[1])
        #expect(joined.finish().map(\.count) == [3])
        #expect(StreamBlock.Builder().finish().isEmpty)
    }

    /// A decoded block's positions, and its slices: each gives the same events
    /// as the whole block at the same versions; the whole range is the block itself.
    @Test func aDecodedBlockSlicesToTheSameEvents() throws {
        var builder = StreamBlock.Builder()
        for v in 10..<17 { builder.add(Self.event(UInt64(v), bytes: 20 + v)) }
        let raw = try #require(builder.finish().first)
        var encoded: [UInt8] = []
        StreamBlock.encode(raw, compress: true, into: &encoded)
        let block = try StreamBlock.decoded(from: encoded[...]).get()
        let all = block.events(stream: "s")
        #expect(all.map(\.version) == Array(10..<17))
        #expect((0..<block.count).map { block.position(at: $0) } == all.map(\.position))
        for range in [0..<1, 2..<5, 6..<7, 0..<6, 1..<7] {
            let slice = block.slice(range)
            #expect(slice.firstVersion == 10 + UInt64(range.lowerBound) && slice.count == range.count)
            #expect(slice.events(stream: "s") == Array(all[range]), "\(range)")
            #expect(slice.cost < block.cost)
        }
        #expect(block.slice(0..<7).raw == block.raw && block.slice(0..<7).offsets == block.offsets)
    }

    /// The splitter adds an entry from one journal record, whose type, metadata
    /// and data lie back to back (copied at once); separate buffers are copied
    /// one by one. Both give the same bytes, and the block decodes to the event.
    @Test func anEntryFromOneBufferEqualsOneFromThree() throws {
        let type: [UInt8] = Array("Ordered".utf8), metadata: [UInt8] = [1, 2, 3], data: [UInt8] = Array(repeating: 9, count: 300)
        let id = UUID()
        func entry(_ add: (inout StreamBlock.RawBlock) -> Void) -> StreamBlock.RawBlock {
            var block = StreamBlock.RawBlock()
            add(&block)
            return block
        }
        let joined = type + metadata + data
        let fromOne = joined.withUnsafeBytes { all in
            entry {
                $0.add(version: 5, position: 800, id: id.uuid, timestampNanoseconds: 42, json: false,
                       type: UnsafeRawBufferPointer(rebasing: all[0..<7]), metadata: UnsafeRawBufferPointer(rebasing: all[7..<10]),
                       data: UnsafeRawBufferPointer(rebasing: all[10...]))
            }
        }
        let fromThree = type.withUnsafeBytes { t in metadata.withUnsafeBytes { m in data.withUnsafeBytes { d in
            entry { $0.add(version: 5, position: 800, id: id.uuid, timestampNanoseconds: 42, json: false, type: t, metadata: m, data: d) }
        } } }
        #expect(fromOne.raw == fromThree.raw)
        var encoded: [UInt8] = []
        StreamBlock.encode(fromOne, compress: true, into: &encoded)
        let events = try StreamBlock.decode(encoded, stream: "s").get()
        #expect(events.count == 1)
        #expect(events.first.map { [$0.id == id, $0.type == "Ordered", $0.metadata == metadata, $0.data == data, $0.version == 5, $0.position == 800] }
                == [true, true, true, true, true, true])
    }
}
