import Foundation
import Ringstore

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

/// One append a crash-test writer is about to send, as it reports it on its
/// output before the call: a kill may leave it unanswered, and the verifier
/// then sends it again as the client would (the events rebuilt from the
/// writer, its first sequence number and the stream).
///
/// Line format: `SEND <writer> <firstSequence> <id>,<id>,… <stream>`.
public struct Sending: Sendable, Hashable {
    public var writer: Int
    public var firstSequence: Int
    public var ids: [UUID]
    public var stream: String

    public init(writer: Int, firstSequence: Int, ids: [UUID], stream: String) {
        self.writer = writer
        self.firstSequence = firstSequence
        self.ids = ids
        self.stream = stream
    }

    public var line: String {
        "SEND \(writer) \(firstSequence) \(ids.map(\.uuidString).joined(separator: ",")) \(stream)\n"
    }

    /// The events as the writer made them.
    public var events: [EventData] {
        ids.enumerated().map { i, id in
            EventData(id: id, type: "CrashTest", data: CrashWriter.payload(stream: stream, writer: writer, sequence: firstSequence + i))
        }
    }

    /// Parses every complete `SEND` line of a writer's output.
    public static func parse(_ output: String) -> [Sending] {
        var result: [Sending] = []
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        if !output.hasSuffix("\n") { lines.removeLast() }
        for line in lines where line.hasPrefix("SEND ") {
            let fields = line.split(separator: " ", maxSplits: 4)
            guard fields.count == 5, let writer = Int(fields[1]), let first = Int(fields[2]) else { continue }
            let ids = fields[3].split(separator: ",").compactMap { UUID(uuidString: String($0)) }
            result.append(Sending(writer: writer, firstSequence: first, ids: ids, stream: String(fields[4])))
        }
        return result
    }
}
