import Foundation
import Testing
@_spi(Benchmarks) import Ringstore

/// The benchmark entry points round-trip: journal records and stream blocks give back what went in.
@Suite struct CodecsTests {
    let events = (0..<50).map { i in
        EventData(type: "Reading", json: "{\"seq\":\(i),\"pad\":\"\(String(repeating: "x", count: i * 7))\"}", metadata: Array("m\(i)".utf8))
    }

    @Test func journalRecordsRoundTrip() throws {
        var buffer: [UInt8] = []
        let length = Codecs.encodeJournalRecords(events, stream: "sensor-1", into: &buffer)
        #expect(length > 0 && length % 8 == 0 && length <= buffer.count)
        let decoded = try Codecs.decodeJournalRecords(buffer, length: length)
        #expect(decoded.map(\.id) == events.map(\.id))
        #expect(decoded.map(\.data) == events.map(\.data) && decoded.map(\.metadata) == events.map(\.metadata))
        #expect(decoded.map(\.version) == (0..<50).map(UInt64.init) && decoded.allSatisfy { $0.stream == "sensor-1" })
        buffer[length / 2] ^= 0xFF
        #expect(throws: RingstoreError.self) { try Codecs.decodeJournalRecords(buffer, length: length) }
    }

    @Test(arguments: [true, false]) func streamBlocksRoundTrip(compress: Bool) throws {
        var buffer: [UInt8] = []
        let length = Codecs.encodeJournalRecords(events, stream: "s", into: &buffer)
        let recorded = try Codecs.decodeJournalRecords(buffer, length: length)
        try #require(recorded.count == events.count)
        var block: [UInt8] = []
        Codecs.encodeStreamBlock(recorded, compress: compress, into: &block)
        #expect(try Codecs.decodeStreamBlock(block, stream: "s") == recorded)
        block[block.count - 1] ^= 0x01
        #expect(throws: RingstoreError.self) { try Codecs.decodeStreamBlock(block, stream: "s") }
    }
}
