/// Server-Sent Events read from an answer's body as they arrive: each event's
/// `event:` name, `id:` and `data:` (lines joined by `\n`); comments and
/// `retry:` lines are skipped.
public struct ServerSentEvents {
    /// One event.
    public struct Event: Equatable, Sendable {
        /// `event:`, nil for an ordinary message.
        public var name: String?
        public var id: String?
        public var data: String
    }

    let connection: HTTPConnection
    private var pending: [UInt8] = []

    /// Reads the body of the answer whose head ``HTTPConnection/start(_:_:headers:body:)`` returned.
    public init(connection: HTTPConnection) {
        self.connection = connection
    }

    /// The next event, or nil when the stream ends.
    public mutating func next() async throws -> Event? {
        while true {
            if let end = Self.blankLine(in: pending) {
                let block = String(decoding: pending[..<end.start], as: UTF8.self)
                pending.removeFirst(end.end)
                var event = Event(name: nil, id: nil, data: "")
                var hasData = false
                for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.hasPrefix("data:") {
                        event.data += (hasData ? "\n" : "") + Self.value(line.dropFirst(5))
                        hasData = true
                    } else if line.hasPrefix("id:") {
                        event.id = Self.value(line.dropFirst(3))
                    } else if line.hasPrefix("event:") {
                        event.name = Self.value(line.dropFirst(6))
                    }
                }
                if hasData { return event }
                continue
            }
            guard let chunk = try await connection.nextChunk() else { return nil }
            pending += chunk
        }
    }

    /// A field's value: one leading space is not part of it.
    private static func value(_ text: Substring) -> String {
        String(text.hasPrefix(" ") ? text.dropFirst() : text)
    }

    private static func blankLine(in bytes: [UInt8]) -> (start: Int, end: Int)? {
        guard bytes.count >= 2 else { return nil }
        for i in 0..<(bytes.count - 1) where bytes[i] == 0x0A && bytes[i + 1] == 0x0A { return (i, i + 2) }
        return nil
    }
}
