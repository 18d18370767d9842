import Foundation

/// One JSON Lines record split into its top-level members, each kept as the
/// exact bytes of its value. `import` needs the raw text of `data` so that an
/// event's JSON is stored byte for byte as it was exported (parsing and
/// re-serialising would reorder keys and change number formatting).
///
/// The whole line is checked: valid UTF-8, and valid JSON down to every string
/// escape and number (a value stored as JSON must be JSON). Nesting is limited
/// to 512 levels, so no input can exhaust the stack.
public struct JSONLine: Sendable {
    /// Top-level member name → the raw UTF-8 bytes of its value.
    public var members: [String: ArraySlice<UInt8>]

    /// Why a line was rejected, in words that point at the problem.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public init(_ line: some Collection<UInt8>) throws {
        let bytes = Array(line)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ParseError(description: "the line is not valid UTF-8")
        }
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
    public func string(_ name: String) throws -> String? {
        guard let raw = members[name] else { return nil }
        guard raw.first == UInt8(ascii: "\"") else { throw ParseError(description: "\"\(name)\" must be a string") }
        return try JSONLine.decodeString(raw)
    }

    /// A member that must be a JSON string or number, as text.
    public func scalarText(_ name: String) throws -> String? {
        guard let raw = members[name] else { return nil }
        if raw.first == UInt8(ascii: "\"") { return try JSONLine.decodeString(raw) }
        guard JSONLine.isNumber(raw) else { throw ParseError(description: "\"\(name)\" must be a string or a number") }
        return String(decoding: raw, as: UTF8.self)
    }

    /// True if `token` is a JSON number: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    static func isNumber(_ token: some Collection<UInt8>) -> Bool {
        var i = token.startIndex
        @inline(__always) func peek() -> UInt8? { i < token.endIndex ? token[i] : nil }
        @inline(__always) func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        @inline(__always) func digits() -> Int {
            var n = 0
            while isDigit(peek()) { i = token.index(after: i); n += 1 }
            return n
        }
        if peek() == UInt8(ascii: "-") { i = token.index(after: i) }
        if peek() == UInt8(ascii: "0") {
            i = token.index(after: i)
        } else if digits() == 0 {
            return false
        }
        if peek() == UInt8(ascii: ".") {
            i = token.index(after: i)
            guard digits() > 0 else { return false }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            i = token.index(after: i)
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { i = token.index(after: i) }
            guard digits() > 0 else { return false }
        }
        return i == token.endIndex
    }

    /// True if `bytes` are exactly one JSON value (whitespace around it allowed):
    /// valid UTF-8, and valid JSON down to every escape and number, nested at most
    /// 512 deep — a value `import` would take as `data`. One pass, no allocation
    /// for valid input, so `export` can afford it for every event it prints.
    public static func isValidJSONValue(_ bytes: [UInt8]) -> Bool {
        guard bytes.withUnsafeBufferPointer({ UTF8Validation.isValid($0) }) else { return false }
        var scanner = Scanner(bytes: bytes)
        scanner.skipSpace()
        do { try scanner.skipValue(depth: 0) } catch { return false }
        scanner.skipSpace()
        return scanner.index == bytes.count
    }

    static func decodeString(_ raw: ArraySlice<UInt8>) throws -> String {
        // Most strings (member names, types, stream names) have no escape: their bytes between
        // the quotes are the text (already checked as UTF-8 and free of control characters).
        if raw.count >= 2, raw.first == UInt8(ascii: "\""), raw.last == UInt8(ascii: "\""),
           !raw.contains(UInt8(ascii: "\\")) {
            return String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
        }
        guard let value = try? JSONSerialization.jsonObject(with: Data(raw), options: [.fragmentsAllowed]) as? String else {
            throw ParseError(description: "bad string \(String(decoding: raw.prefix(40), as: UTF8.self))")
        }
        return value
    }

    fileprivate struct Scanner {
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
            while index < bytes.count {
                let b = bytes[index]
                index += 1
                // Most bytes of a string are plain: skip them before the switch.
                if b >= 0x20 && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") { continue }
                switch b {
                case UInt8(ascii: "\""):
                    return
                case UInt8(ascii: "\\"):
                    guard let escaped = peek else { break }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        continue
                    case UInt8(ascii: "u"):
                        for _ in 0..<4 {
                            guard let h = peek, (h >= 0x30 && h <= 0x39) || (h | 0x20 >= 0x61 && h | 0x20 <= 0x66) else {
                                throw ParseError(description: "bad \\u escape at byte \(index + 1)")
                            }
                            index += 1
                        }
                    default:
                        throw ParseError(description: "bad escape at byte \(index)")
                    }
                case 0..<0x20:
                    throw ParseError(description: "control character in a string at byte \(index)")
                default:
                    continue
                }
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
                let token = bytes[start..<index]
                let valid = switch token.first {
                case UInt8(ascii: "t"): token.elementsEqual("true".utf8)
                case UInt8(ascii: "f"): token.elementsEqual("false".utf8)
                case UInt8(ascii: "n"): token.elementsEqual("null".utf8)
                default: JSONLine.isNumber(token)
                }
                guard valid else {
                    let text = String(decoding: token.prefix(20), as: UTF8.self)
                    throw ParseError(description: text.isEmpty ? "missing value at byte \(start + 1)" : "bad value \"\(text)\" at byte \(start + 1)")
                }
            case nil:
                throw ParseError(description: "unexpected end of line")
            }
        }
    }
}

extension JSONLine {
    /// The elements of `bytes`, which must be exactly one JSON array (whitespace
    /// around it allowed), each as the exact bytes of its value. The same checks as
    /// a line's (valid UTF-8, every value valid JSON, nesting at most 512 deep); the
    /// server splits an append's body with it and parses each element as a ``JSONLine``.
    public static func arrayElements(_ bytes: [UInt8]) throws -> [ArraySlice<UInt8>] {
        guard bytes.withUnsafeBufferPointer({ UTF8Validation.isValid($0) }) else {
            throw ParseError(description: "the body is not valid UTF-8")
        }
        var scanner = Scanner(bytes: bytes)
        var elements: [ArraySlice<UInt8>] = []
        scanner.skipSpace()
        try scanner.expect(UInt8(ascii: "["))
        scanner.skipSpace()
        if scanner.peek == UInt8(ascii: "]") { scanner.index += 1 } else {
            while true {
                scanner.skipSpace()
                let start = scanner.index
                try scanner.skipValue(depth: 1)
                elements.append(bytes[start..<scanner.index])
                scanner.skipSpace()
                if scanner.peek == UInt8(ascii: ",") { scanner.index += 1; continue }
                try scanner.expect(UInt8(ascii: "]"))
                break
            }
        }
        scanner.skipSpace()
        guard scanner.index == bytes.count else { throw ParseError(description: "unexpected text after the array at byte \(scanner.index + 1)") }
        return elements
    }
}
