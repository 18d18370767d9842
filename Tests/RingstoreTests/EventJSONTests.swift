import Foundation
import Testing
@testable import Ringstore
@testable import RingstoreJSONLines

/// The JSON Lines writer of `read`, `tail` and `export`, checked against
/// Foundation's encoders (the writer it replaced) and against `import`'s reader.
@Suite struct EventJSONTests {
    /// What `JSONSerialization` writes for a string: the reference for escaping.
    func foundationQuoted(_ text: String) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed, .withoutEscapingSlashes])
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    func event(stream: String = "order-1", type: String = "Placed", data: [UInt8], metadata: [UInt8] = [],
               contentType: ContentType = .json, nanoseconds: Int64 = 1_795_006_624_250_000_000) -> RecordedEvent {
        RecordedEvent(stream: stream, version: 7, position: 123_456, id: UUID(uuidString: "47C4819D-A923-48D5-B626-791C9C9FB1A1")!,
                      type: type, data: data, metadata: metadata, contentType: contentType, timestampNanoseconds: nanoseconds)
    }

    @Test func stringsEscapeQuotesBackslashesAndControlCharacters() throws {
        var text = String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) })
        text += "\u{7F}\"\\/é\u{2028}😀 end"
        let quoted = EventJSON.quoted(text)
        #expect(quoted == #""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"# + "\u{7F}\\\"\\\\/é\u{2028}😀 end\"")
        #expect(quoted == (try foundationQuoted(text)))
        #expect(try JSONSerialization.jsonObject(with: Data(quoted.utf8), options: [.fragmentsAllowed]) as? String == text)
        #expect(EventJSON.quoted("") == #""""#)
        #expect(EventJSON.quoted(#"a"b\c"#) == #""a\"b\\c""#)
    }

    @Test func randomStringsAreQuotedAsJSONSerializationQuotesThem() throws {
        var random = SeededRandom(seed: 8259)
        let alphabet: [Unicode.Scalar] = ["a", "Z", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "€", "😀", "\u{FEFF}"]
        for _ in 0..<500 {
            var text = ""
            for _ in 0..<Int(random.next() % 40) { text.unicodeScalars.append(alphabet[Int(random.next() % UInt64(alphabet.count))]) }
            #expect(EventJSON.quoted(text) == (try foundationQuoted(text)), "\(text.debugDescription)")
        }
    }

    @Test func timestampsMatchISO8601DateFormatter() {
        let formatter = ISO8601DateFormatter()
        func line(_ nanoseconds: Int64) -> String {
            var output = JSONByteBuffer()
            output.append(quotedTimestampNanoseconds: nanoseconds)
            return String(decoding: output.bytes, as: UTF8.self)
        }
        let seconds: [Int64] = [
            0, 1, 59, 60, 3599, 3600, 86_399, 86_400,
            1_795_006_624,  // 2026-11-18T12:57:04Z
            951_782_400, 951_868_800,  // 2000-02-29 and 2000-03-01: a leap day in a year divisible by 400
            4_107_456_000, 4_107_542_400,  // 2100-02-28 and 2100-03-01: no leap day in 2100
            1_078_012_800,  // 2004-02-29
            -1, -86_400, -86_401, -2_208_988_800,  // before 1970, back to 1900-01-01
            -2_203_977_600,  // 1900-02-28
            -9_223_372_036, 9_223_372_035,  // near the ends of Int64 nanoseconds
        ]
        for second in seconds {
            for fraction: Int64 in [0, 1, 250_000_000, 998_000_000] {
                let nanoseconds = second * 1_000_000_000 + fraction
                let expected = formatter.string(from: Date(timeIntervalSince1970: Double(second) + Double(fraction) / 1e9))
                #expect(line(nanoseconds) == "\"\(expected)\"", "\(nanoseconds)")
            }
        }
        // Every 10,007th day (and a varying time of day) from 1677 to 2262.
        var day: Int64 = -106_750
        while day < 106_750 {
            let second = day * 86_400 + (day * 7_919 % 86_400 + 86_400) % 86_400
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(second)))
            #expect(line(second * 1_000_000_000 + 123_000_000) == "\"\(expected)\"", "day \(day)")
            day += 10_007
        }
        // Truncated toward the past, and total over Int64.
        #expect(line(-1) == #""1969-12-31T23:59:59Z""#)
        #expect(line(999_999_999) == #""1970-01-01T00:00:00Z""#)
        #expect(line(-1_000_000_000) == #""1969-12-31T23:59:59Z""#)
        #expect(line(-1_000_000_001) == #""1969-12-31T23:59:58Z""#)
        #expect(line(.max) == #""2262-04-11T23:47:16Z""#)
        #expect(line(.min) == #""1677-09-21T00:12:43Z""#)
    }

    @Test func numbersUUIDsAndBase64() {
        func text(_ build: (inout JSONByteBuffer) -> Void) -> String {
            var output = JSONByteBuffer()
            build(&output)
            return String(decoding: output.bytes, as: UTF8.self)
        }
        for value: UInt64 in [0, 7, 9, 10, 99, 100, 123_456_789, .max] {
            #expect(text { $0.append(decimal: value) } == "\(value)")
        }
        for _ in 0..<20 {
            let id = UUID()
            #expect(text { $0.append(quotedUUID: id) } == "\"\(id.uuidString.lowercased())\"")
        }
        var random = SeededRandom(seed: 4648)
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            #expect(text { $0.append(quotedBase64: bytes) } == "\"\(Data(bytes).base64EncodedString())\"", "length \(length)")
        }
    }

    @Test func eventLineEmbedsJSONDataAndMetadata() throws {
        let line = EventJSON.line(event(stream: "order \"1\"", data: Array(#"{"total":42,"items":["é"]}"#.utf8),
                                        metadata: Array(#"{"by":"test"}"#.utf8)))
        #expect(line == #"{"stream":"order \"1\"","type":"Placed","id":"47c4819d-a923-48d5-b626-791c9c9fb1a1","version":7,"position":123456,"timestamp":"2026-11-18T12:57:04Z","data":{"total":42,"items":["é"]},"metadata":{"by":"test"}}"#)
        // What `import` reads back: the same bytes.
        let parsed = try JSONLine(Array(line.utf8))
        #expect(Array(parsed.members["data"]!) == Array(#"{"total":42,"items":["é"]}"#.utf8))
        #expect(try parsed.string("stream") == "order \"1\"")
    }

    @Test func eventLineLeavesOutEmptyMetadata() {
        let line = EventJSON.line(event(data: Array("true".utf8)))
        #expect(line.hasSuffix(#","data":true}"#))
        #expect(!line.contains("metadata"))
    }

    @Test func dataThatIsNotEmbeddableJSONGoesBase64() throws {
        let cases: [(data: [UInt8], contentType: ContentType)] = [
            (Array("not json".utf8), .binary),
            (Array("{}".utf8), .binary),  // JSON-looking, but stored as bytes: stays bytes
            ([0, 255, 10, 13], .binary),
            (Array("{oops".utf8), .json),  // flagged JSON through the library API, but not JSON
            (Array("{\"a\":\n1}".utf8), .json),  // valid, but a raw newline would split the line
            (Array("{\"a\":1}\r\n".utf8), .json),
            ([0x22, 0xFF, 0x22], .json),  // a string that is not UTF-8
            (Array("\"tab\there\"".utf8), .json),  // a raw control character in a string
            (Array("1 2".utf8), .json),
            ([], .json),
        ]
        for (data, contentType) in cases {
            let line = EventJSON.line(event(data: data, metadata: data.isEmpty ? [] : data, contentType: contentType))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(object["data"] == nil && object["dataBase64"] as? String == Data(data).base64EncodedString(), "\(line)")
            if !data.isEmpty {
                #expect(object["metadata"] == nil && object["metadataBase64"] as? String == Data(data).base64EncodedString(), "\(line)")
            }
            #expect(!line.contains("\n"))
        }
    }

    @Test func jsonThatChecksIsEmbeddedAsItIs() throws {
        for text in ["1", " -0.5e+3 ", "\"\"", "\"é\\u00e9\\n\"", "[]", "[1,{\"a\":null,\"b\":[true,false]}]", "{ \"a\" : 1 }", "\t{}\r"] {
            let line = EventJSON.line(event(data: Array(text.utf8)))
            #expect(line.hasSuffix(",\"data\":\(text)}"), "\(line)")
            #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any])
        }
    }

    @Test func everyLineIsOneLineImportReadsBackToTheSameBytes() throws {
        // Payloads from JSON's own characters, so that many are JSON and many nearly are.
        let alphabet = Array("{}[]:,\"\\ \n\t0123456789-+.eEtrufalsn/".utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        var random = SeededRandom(seed: 1_000_003)
        var embedded = 0
        for i in 0..<3000 {
            let data = (0..<Int(random.next() % 12)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            let stream = String(decoding: (0..<Int(random.next() % 6 + 1)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count - 3))] }, as: UTF8.self)
            let line = EventJSON.line(event(stream: stream, data: data, metadata: i % 2 == 0 ? data : []))
            #expect(!line.contains("\n"))
            let parsed = try JSONLine(Array(line.utf8))
            #expect(try parsed.string("stream") == stream)
            if let raw = parsed.members["data"] {
                // `import` keeps a value's bytes, not whitespace around it.
                let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
                #expect(Array(raw) == Array(data.drop(while: isSpace).reversed().drop(while: isSpace).reversed()))
                embedded += 1
            } else {
                #expect(try parsed.string("dataBase64").flatMap { Data(base64Encoded: $0) } == Data(data))
            }
        }
        #expect(embedded > 50, "the alphabet makes valid JSON often enough to test embedding")
    }

    @Test func validJSONValuesAreStrictRFC8259Values() {
        let valid = ["0", "-1", "1.5", "1e10", "-0.0E-7", "true", "false", "null", "\"\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u12aF\"",
                     "[]", "{}", "[[],[{}]]", " {\"a\" : [1, 2]} ", "\"😀\""]
        let invalid = ["", " ", "01", "1.", ".5", "+1", "1e", "-", "tru", "nulll", "[1,]", "{\"a\"}", "{\"a\":1,}", "{a:1}", "[1 2]",
                       "1 2", "\"\\x\"", "\"\\u12\"", "\"unterminated", "\"\u{1}\"", "[", "]", "{}}", "'a'", "NaN"]
        for text in valid {
            #expect(JSONLine.isValidJSONValue(Array(text.utf8)), "\(text)")
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil, "\(text)")
        }
        for text in invalid {
            #expect(!JSONLine.isValidJSONValue(Array(text.utf8)), "\(text)")
            // JSONSerialization takes trailing commas, which `import` (rightly) refuses: such data now goes base64.
            if !text.contains(",]") && !text.contains(",}") {
                #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) == nil, "\(text)")
            }
        }
        #expect(!JSONLine.isValidJSONValue([0x22, 0xC3, 0x22]))  // truncated UTF-8 inside a string
        #expect(JSONLine.isValidJSONValue(Array((String(repeating: "[", count: 500) + String(repeating: "]", count: 500)).utf8)))
        #expect(!JSONLine.isValidJSONValue(Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8)))
    }

    @Test func utf8ValidationAgreesWithTheStandardLibrary() {
        let edges: [[UInt8]] = [
            [], [0x41], [0x7F], [0x80], [0xC0, 0x80], [0xC1, 0xBF], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
            [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF],
            [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xC3, 0x41], [0xE2, 0x41, 0xAC], [0x61, 0xC3, 0xA9, 0x62],
        ]
        var random = SeededRandom(seed: 3629)
        let samples = edges + (0..<5000).map { _ in
            (0..<Int(random.next() % 8)).map { _ in
                let r = random.next()
                return r % 3 == 0 ? UInt8(truncatingIfNeeded: r >> 8) & 0x7F : UInt8(truncatingIfNeeded: r >> 8) | 0x80
            }
        }
        for bytes in samples {
            let valid = bytes.withUnsafeBufferPointer { UTF8Validation.isValid($0) }
            #expect(valid == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }
}
