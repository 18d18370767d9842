import Glibc

/// The rules for stream names and event types, checked at the API boundary.
enum NameRules {
    static let maxStreamNameBytes = 1024
    static let maxEventTypeBytes = 255

    /// Throws unless `name` is 1-1024 bytes of UTF-8 without NUL. Names starting
    /// with `$` are reserved for the store itself unless `allowReserved`.
    static func validateStreamName(_ name: String, allowReserved: Bool = false) throws {
        let count = name.utf8.count
        guard count > 0 else {
            throw RingstoreError(.invalidStreamName, "a stream name must not be empty", stream: name)
        }
        guard count <= maxStreamNameBytes else {
            throw RingstoreError(.invalidStreamName,
                                 "stream name is \(count) bytes; the limit is \(maxStreamNameBytes) bytes of UTF-8",
                                 stream: String(name.prefix(64)) + "…")
        }
        guard !containsNUL(name) else {
            throw RingstoreError(.invalidStreamName, "stream name contains a NUL byte", stream: name)
        }
        if !allowReserved, name.utf8.first == UInt8(ascii: "$") {
            throw RingstoreError(.invalidStreamName,
                                 "stream names beginning with '$' are reserved for the system (got \"\(name)\")",
                                 stream: name)
        }
    }

    /// Whether two names are the same stream: the same bytes. Swift's `String`
    /// equality (which the store's tables use) also equates canonically
    /// equivalent names ("caf\u{E9}" and "cafe\u{301}"), while file names are
    /// made from the bytes; so a store holds at most one name of each such
    /// family, and every operation checks that the name it was given is that
    /// one, byte for byte (see ``equivalentNameError(_:stored:)``).
    static func sameStream(_ a: String, _ b: String) -> Bool {
        a.hasSameUTF8(as: b)
    }

    /// The error for a name that is canonically equivalent to a stream the
    /// store holds but not byte-identical to it.
    static func equivalentNameError(_ name: String, stored: String) -> RingstoreError {
        RingstoreError(.invalidStreamName,
                       "stream name \"\(name)\" (UTF-8 \(hex(name))) is Unicode-equivalent to the stored stream \"\(stored)\" (UTF-8 \(hex(stored))) but not the same bytes; stream names are compared byte for byte, and one store cannot hold both: use the stored name's bytes",
                       stream: name)
    }

    private static func hex(_ name: String) -> String {
        name.utf8.prefix(48).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
            + (name.utf8.count > 48 ? "…" : "")
    }

    /// Throws unless `type` is 1-255 bytes of UTF-8 without NUL.
    static func validateEventType(_ type: String, stream: String) throws {
        let count = type.utf8.count
        guard count > 0, count <= maxEventTypeBytes else {
            throw RingstoreError(.invalidArgument,
                                 "event type must be 1-\(maxEventTypeBytes) bytes of UTF-8 (got \(count) bytes)",
                                 stream: stream)
        }
        guard !containsNUL(type) else {
            throw RingstoreError(.invalidArgument, "event type contains a NUL byte", stream: stream)
        }
    }

    /// Whether `text` holds a NUL byte, searched in its contiguous UTF-8 (every
    /// native string has it) with `memchr`: going through the `utf8` view byte
    /// by byte cost about 35 instructions a byte, and `contains` on the buffer
    /// still about 8 (some 150 of an append's instructions for its name and type).
    private static func containsNUL(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
            return memchr(base, 0, bytes.count) != nil
        } ?? text.utf8.contains(0)
    }
}
