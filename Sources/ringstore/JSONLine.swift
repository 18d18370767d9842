import Foundation

/// One JSON Lines record split into its top-level members, each kept as the
/// exact bytes of its value. `import` needs the raw text of `data` so that an
/// event's JSON is stored byte for byte as it was exported (parsing and
/// re-serialising would reorder keys and change number formatting).
struct JSONLine {
    /// Top-level member name → the raw UTF-8 bytes of its value.
    var members: [String: ArraySlice<UInt8>]

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ line: some Collection<UInt8>) throws {
        let bytes = Array(line)
        var scanner = Scanner(bytes: bytes)
        members = [:]
        scanner.skipSpace()
        try scanner.expect(UInt8(ascii: "{"))
        scanner.skipSpace()
        if scanner.peek == UInt8(ascii: "}") { scanner.index += 1 } else {
            while true {
                scanner.skipSpace()
                let keyStart = scanner.index
                try scanner.skipString()
                let key = try JSONLine.decodeString(bytes[keyStart..<scanner.index])
                scanner.skipSpace()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipSpace()
                let valueStart = scanner.index
                try scanner.skipValue(depth: 0)
                guard members[key] == nil else { throw ParseError(description: "member \"\(key)\" appears twice") }
                members[key] = bytes[valueStart..<scanner.index]
                scanner.skipSpace()
                if scanner.peek == UInt8(ascii: ",") { scanner.index += 1; continue }
                try scanner.expect(UInt8(ascii: "}"))
                break
            }
        }
        scanner.skipSpace()
        guard scanner.index == bytes.count else { throw ParseError(description: "unexpected text after the object at byte \(scanner.index + 1)") }
    }

    /// A member that must be a JSON string.
    func string(_ name: String) throws -> String? {
        guard let raw = members[name] else { return nil }
        guard raw.first == UInt8(ascii: "\"") else { throw ParseError(description: "\"\(name)\" must be a string") }
        return try JSONLine.decodeString(raw)
    }

    /// A member that must be a JSON string or number, as text.
    func scalarText(_ name: String) throws -> String? {
        guard let raw = members[name] else { return nil }
        if raw.first == UInt8(ascii: "\"") { return try JSONLine.decodeString(raw) }
        let text = String(decoding: raw, as: UTF8.self)
        guard Double(text) != nil else { throw ParseError(description: "\"\(name)\" must be a string or a number") }
        return text
    }

    static func decodeString(_ raw: ArraySlice<UInt8>) throws -> String {
        guard let value = try? JSONSerialization.jsonObject(with: Data(raw), options: [.fragmentsAllowed]) as? String else {
            throw ParseError(description: "bad string \(String(decoding: raw.prefix(40), as: UTF8.self))")
        }
        return value
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { index += 1 }
        }

        mutating func expect(_ byte: UInt8) throws {
            guard peek == byte else {
                throw ParseError(description: "expected '\(Character(UnicodeScalar(byte)))' at byte \(index + 1)")
            }
            index += 1
        }

        mutating func skipString() throws {
            try expect(UInt8(ascii: "\""))
            while let b = peek {
                index += 1
                if b == UInt8(ascii: "\\") { index += 1 } else if b == UInt8(ascii: "\"") { return }
            }
            throw ParseError(description: "unterminated string")
        }

        /// Skips one value; structure is checked here, scalars by whoever decodes them.
        mutating func skipValue(depth: Int) throws {
            guard depth < 512 else { throw ParseError(description: "nested too deeply") }
            switch peek {
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = peek == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                let isObject = close == UInt8(ascii: "}")
                index += 1
                skipSpace()
                if peek == close { index += 1; return }
                while true {
                    skipSpace()
                    if isObject {
                        try skipString()
                        skipSpace()
                        try expect(UInt8(ascii: ":"))
                        skipSpace()
                    }
                    try skipValue(depth: depth + 1)
                    skipSpace()
                    if peek == UInt8(ascii: ",") { index += 1; continue }
                    try expect(close)
                    return
                }
            case .some:
                let start = index
                while let b = peek, !(b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D) { index += 1 }
                let token = String(decoding: bytes[start..<index], as: UTF8.self)
                guard token == "true" || token == "false" || token == "null" || Double(token) != nil else {
                    throw ParseError(description: "bad value \"\(token.prefix(20))\" at byte \(start + 1)")
                }
            case nil:
                throw ParseError(description: "unexpected end of line")
            }
        }
    }
}
