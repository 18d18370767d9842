import Foundation

/// One acknowledged append, as a crash-test writer reports it on its output.
///
/// Line format: `ACK <firstVersion> <firstPosition> <id>,<id>,… <stream>` — the
/// stream last, since it is the only field that may contain spaces.
public struct Acknowledgement: Sendable, Hashable {
    public var stream: String
    public var firstVersion: UInt64
    public var firstPosition: UInt64
    public var ids: [UUID]

    public init(stream: String, firstVersion: UInt64, firstPosition: UInt64, ids: [UUID]) {
        self.stream = stream
        self.firstVersion = firstVersion
        self.firstPosition = firstPosition
        self.ids = ids
    }

    public var line: String {
        "ACK \(firstVersion) \(firstPosition) \(ids.map(\.uuidString).joined(separator: ",")) \(stream)\n"
    }

    /// Parses every complete line of a writer's output (a last line without its
    /// newline was cut by the kill and is ignored, as are unrelated lines).
    public static func parse(_ output: String) -> [Acknowledgement] {
        var result: [Acknowledgement] = []
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        if !output.hasSuffix("\n") { lines.removeLast() }
        for line in lines where line.hasPrefix("ACK ") {
            let fields = line.split(separator: " ", maxSplits: 4)
            guard fields.count == 5, let version = UInt64(fields[1]), let position = UInt64(fields[2]) else { continue }
            let ids = fields[3].split(separator: ",").compactMap { UUID(uuidString: String($0)) }
            result.append(Acknowledgement(stream: String(fields[4]), firstVersion: version, firstPosition: position, ids: ids))
        }
        return result
    }
}
