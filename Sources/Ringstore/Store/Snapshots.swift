#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A stream's state as the application computed it up to ``version``, so that
/// a reader can start from it and read only the events after it.
public struct Snapshot: Sendable, Hashable {
    /// The stream it belongs to.
    public var stream: String
    /// The last version of the stream the state includes.
    public var version: UInt64
    /// The state, as the application encoded it.
    public var data: [UInt8]
    /// When it was saved, in nanoseconds since 1970-01-01 UTC.
    public var timestampNanoseconds: Int64
}

/// Snapshots live in a system stream per stream, `$snapshot-<stream>`: one
/// event each (type `$snapshot`, the state as data, `{"$version": N}` as
/// metadata), appended through the ordinary path, so durable and recovered
/// like any event. Only the last one counts: reads of a snapshot stream show
/// its last event only (an implicit `maxCount` of 1), and the offline
/// compaction drops the older ones. A snapshot is one event, so its size is
/// bounded by `maxEventSize`.
extension EventStore {
    /// Saves `data` as the state of `stream` up to `version`, replacing the
    /// previous snapshot (the last one saved wins, whatever its version).
    ///
    /// - Throws: `.streamNotFound` / `.invalidArgument` if the stream has no
    ///   event `version` yet, `.streamDeleted` if it was tombstoned,
    ///   `.eventTooLarge` if `data` exceeds `maxEventSize`.
    public func saveSnapshot(of stream: String, version: UInt64, data: [UInt8]) async throws {
        try checkOpen()
        try NameRules.validateStreamName(stream)
        try requireExactStreamName(stream)
        let snapshotStream = try Self.snapshotStream(of: stream)
        let header = Array("{\"$version\":\(version)}".utf8)
        guard data.count + header.count <= configuration.maxEventSize else {
            throw RingstoreError(.eventTooLarge,
                                 "a snapshot of stream \"\(stream)\" has \(data.count) bytes; a snapshot is one event, so it may have at most maxEventSize (\(configuration.maxEventSize)) less \(header.count) bytes",
                                 stream: stream)
        }
        if try metadataState(of: stream).tombstoned { throw journal.writer.deletedError(stream) }
        guard let current = try visibleTail(of: stream)?.lastVersion else {
            throw RingstoreError(.streamNotFound, "cannot save a snapshot of stream \"\(stream)\": it has no events", stream: stream)
        }
        guard version <= current else {
            throw RingstoreError(.invalidArgument,
                                 "cannot save a snapshot of stream \"\(stream)\" at version \(version): the stream is at version \(current)",
                                 stream: stream, currentVersion: current)
        }
        let event = EventData(type: SystemStreams.snapshotEventType, data: data,
                              metadata: header, contentType: .binary)
        _ = try await appendPrepared(prepare(stream: snapshotStream, expectedVersion: .any, events: [event],
                                             allowReserved: true))
    }

    /// The last snapshot saved for `stream`, or nil if there is none (or the
    /// stream was soft-deleted after it: it describes deleted events).
    ///
    /// - Throws: `.streamDeleted` if the stream was tombstoned.
    public func loadSnapshot(of stream: String) throws -> Snapshot? {
        try checkOpen()
        try NameRules.validateStreamName(stream)
        try requireExactStreamName(stream)
        let snapshotStream = try Self.snapshotStream(of: stream)
        let state = try metadataState(of: stream)
        if state.tombstoned { throw journal.writer.deletedError(stream) }
        guard let event = try lastEvent(of: snapshotStream) else { return nil }
        guard event.type == SystemStreams.snapshotEventType,
              let header = try? JSONDecoder().decode(SnapshotHeader.self, from: Data(event.metadata))
        else {
            throw RingstoreError(.corruptData, "the last event of \(snapshotStream) is not a snapshot (type \(event.type))",
                                 stream: snapshotStream)
        }
        if state.metadata.isSoftDeleted, header.version < state.metadata.truncateBefore ?? 0 { return nil }
        return Snapshot(stream: stream, version: header.version, data: event.data, timestampNanoseconds: event.timestampNanoseconds)
    }

    private struct SnapshotHeader: Decodable {
        var version: UInt64
        enum CodingKeys: String, CodingKey { case version = "$version" }
    }

    private static func snapshotStream(of stream: String) throws -> String {
        let name = SystemStreams.snapshotStream(of: stream)
        guard name.utf8.count <= NameRules.maxStreamNameBytes else {
            throw RingstoreError(.invalidStreamName,
                                 "stream names longer than \(NameRules.maxStreamNameBytes - SystemStreams.snapshotPrefix.utf8.count) bytes cannot have snapshots (the snapshot stream's name adds \"\(SystemStreams.snapshotPrefix)\")",
                                 stream: String(stream.prefix(64)))
        }
        return name
    }
}
