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
        WriterLines.line(tag: "ACK", firstVersion, firstPosition, ids: ids, stream: stream)
    }

    /// Parses every complete line of a writer's output (a last line without its
    /// newline was cut by the kill and is ignored, as are unrelated lines).
    public static func parse(_ output: String) -> [Acknowledgement] {
        WriterLines.fields(of: output, tag: "ACK").compactMap { fields in
            guard let version = UInt64(fields[1]), let position = UInt64(fields[2]) else { return nil }
            return Acknowledgement(stream: String(fields[4]), firstVersion: version, firstPosition: position, ids: WriterLines.ids(fields[3]))
        }
    }
}

/// The lines a crash-test writer prints: `<TAG> <a> <b> <id>,<id>,… <stream>`.
enum WriterLines {
    /// One line, newline included (the stream last: it may contain spaces).
    static func line(tag: String, _ a: some BinaryInteger, _ b: some BinaryInteger, ids: [UUID], stream: String) -> String {
        "\(tag) \(a) \(b) \(ids.map(\.uuidString).joined(separator: ",")) \(stream)\n"
    }

    /// The five fields of every complete line tagged `tag` (a last line without
    /// its newline was cut by the kill and is ignored, as are other lines).
    static func fields(of output: String, tag: String) -> [[Substring]] {
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        if !output.hasSuffix("\n") { lines.removeLast() }
        return lines.compactMap { line in
            guard line.hasPrefix(tag + " ") else { return nil }
            let fields = line.split(separator: " ", maxSplits: 4)
            return fields.count == 5 ? fields : nil
        }
    }

    static func ids(_ field: Substring) -> [UUID] {
        field.split(separator: ",").compactMap { UUID(uuidString: String($0)) }
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
        WriterLines.line(tag: "SEND", writer, firstSequence, ids: ids, stream: stream)
    }

    /// The events as the writer made them.
    public var events: [EventData] {
        ids.enumerated().map { i, id in
            EventData(id: id, type: "CrashTest", data: CrashWriter.payload(stream: stream, writer: writer, sequence: firstSequence + i))
        }
    }

    /// Parses every complete `SEND` line of a writer's output.
    public static func parse(_ output: String) -> [Sending] {
        WriterLines.fields(of: output, tag: "SEND").compactMap { fields in
            guard let writer = Int(fields[1]), let first = Int(fields[2]) else { return nil }
            return Sending(writer: writer, firstSequence: first, ids: WriterLines.ids(fields[3]), stream: String(fields[4]))
        }
    }
}
