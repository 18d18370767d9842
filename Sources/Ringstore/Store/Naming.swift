/// The rules for stream names and event types, checked at the API boundary.
enum Naming {
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
    /// native string has it): going through the `utf8` view byte by byte cost
    /// about 35 instructions a byte, on every append.
    private static func containsNUL(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { $0.contains(0) } ?? text.utf8.contains(0)
    }
}
