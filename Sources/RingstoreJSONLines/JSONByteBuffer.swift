import Foundation

/// JSON text built in place as UTF-8 bytes: strings escaped by hand, numbers,
/// UUIDs, timestamps and base64 written digit by digit into one growing array.
///
/// `export` prints hundreds of thousands of events a second through one of
/// these; nothing here allocates except the array growing, which a reused
/// buffer (`removeAll(keepingCapacity:)`) stops doing after the first lines.
public struct JSONByteBuffer: Sendable {
    /// The text so far.
    public var bytes: [UInt8] = []

    public init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    /// Forgets the text, keeping the memory for the next.
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }

    /// Appends ASCII punctuation and member names, unescaped.
    public mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends bytes as they are (they must already be JSON text).
    public mutating func append(raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    /// Appends `value` in decimal.
    public mutating func append(decimal value: UInt64) {
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for UInt64.max's 20 digits
        withUnsafeMutableBytes(of: &scratch) { digits in
            var rest = value
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = 0x30 + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[start...]))
        }
    }

    /// Appends `text` as a JSON string: quotes around it; `"`, `\` and control
    /// characters escaped (`\b \t \n \f \r`, others as `\u00XX`); everything
    /// else, `/` and non-ASCII included, as its UTF-8 bytes. The same text
    /// `JSONSerialization` writes with `.withoutEscapingSlashes`.
    public mutating func append(quoted text: String) {
        var text = text
        text.withUTF8 { append(quotedUTF8: $0) }
    }

    /// Appends valid UTF-8 bytes as a JSON string (see ``append(quoted:)``).
    mutating func append(quotedUTF8 utf8: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0  // bytes from here up to the current one need no escape
        for i in 0..<utf8.count {
            let byte = utf8[i]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
            runStart = i + 1
            bytes.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            default:
                append("u00")
                bytes.append(Self.hexDigit(byte >> 4))
                bytes.append(Self.hexDigit(byte & 0xF))
            }
        }
        if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends `id` as a quoted lowercase UUID: `"47c4819d-a923-48d5-b626-791c9c9fb1a1"`.
    public mutating func append(quotedUUID id: UUID) {
        appendFormatted { text in
            text[0] = UInt8(ascii: "\"")
            var end = 1
            withUnsafeBytes(of: id.uuid) { raw in
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        text[end] = UInt8(ascii: "-")
                        end += 1
                    }
                    text[end] = Self.hexDigit(raw[i] >> 4)
                    text[end + 1] = Self.hexDigit(raw[i] & 0xF)
                    end += 2
                }
            }
            text[end] = UInt8(ascii: "\"")
            return end + 1
        }
    }

    /// Appends a quoted UTC timestamp, `"2026-11-24T12:57:04Z"`, for `nanoseconds`
    /// since 1970 (see ``ISO8601Timestamp`` for how it differs from `ISO8601DateFormatter`).
    public mutating func append(quotedTimestampNanoseconds nanoseconds: Int64) {
        let time = ISO8601Timestamp.fields(nanosecondsSince1970: nanoseconds)
        appendFormatted { text in
            // Years are 1677...2262 for any Int64 of nanoseconds: always four digits.
            func put(_ value: Int64, digits: Int, at offset: Int) {
                var rest = value
                for i in stride(from: offset + digits - 1, through: offset, by: -1) {
                    text[i] = 0x30 + UInt8(rest % 10)
                    rest /= 10
                }
            }
            text[0] = UInt8(ascii: "\"")
            put(time.year, digits: 4, at: 1)
            text[5] = UInt8(ascii: "-")
            put(time.month, digits: 2, at: 6)
            text[8] = UInt8(ascii: "-")
            put(time.day, digits: 2, at: 9)
            text[11] = UInt8(ascii: "T")
            put(time.hour, digits: 2, at: 12)
            text[14] = UInt8(ascii: ":")
            put(time.minute, digits: 2, at: 15)
            text[17] = UInt8(ascii: ":")
            put(time.second, digits: 2, at: 18)
            text[20] = UInt8(ascii: "Z")
            text[21] = UInt8(ascii: "\"")
            return 22
        }
    }

    /// Appends `data` base64-encoded (standard alphabet, `=` padding, no line breaks), in quotes.
    public mutating func append(quotedBase64 data: [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        let table = Self.base64Digits
        data.withUnsafeBufferPointer { input in
            var i = 0
            while i + 3 <= input.count {
                let chunk = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                bytes.append(table[Int(chunk >> 18)])
                bytes.append(table[Int(chunk >> 12 & 0x3F)])
                bytes.append(table[Int(chunk >> 6 & 0x3F)])
                bytes.append(table[Int(chunk & 0x3F)])
                i += 3
            }
            let rest = input.count - i
            if rest > 0 {
                let chunk = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                bytes.append(table[Int(chunk >> 18)])
                bytes.append(table[Int(chunk >> 12 & 0x3F)])
                bytes.append(rest == 2 ? table[Int(chunk >> 6 & 0x3F)] : UInt8(ascii: "="))
                bytes.append(UInt8(ascii: "="))
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends a short piece of text written into a 64-byte scratch area on the
    /// stack by `format` (which returns its length): one append instead of one per byte.
    private mutating func appendFormatted(_ format: (UnsafeMutableRawBufferPointer) -> Int) {
        var scratch: (SIMD32<UInt8>, SIMD32<UInt8>) = (.zero, .zero)
        withUnsafeMutableBytes(of: &scratch) { text in
            let count = format(text)
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[..<count]))
        }
    }

    /// The lowercase hex digit for 0...15.
    @inline(__always) private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x57 + nibble
    }

    private static let base64Digits = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
}
