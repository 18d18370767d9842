#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A stream's retention and truncation rules, stored as the last event of its
/// metadata stream (`$$<stream>`) and honoured by reads at once.
///
/// An event of the stream is visible when its version is at or after
/// ``truncateBefore``, it is among the last ``maxCount`` events, and it is no
/// older than ``maxAge``. Hidden events stay on disk until the offline
/// compaction removes them. Setting metadata replaces all of it: to keep a
/// truncation while changing `maxCount`, pass the old `truncateBefore` along.
///
/// Stored as JSON in KurrentDB's spelling: `{"$maxCount": 10, "$maxAge": 3600,
/// "$tb": 42}` (`$maxAge` in seconds), plus `"$softDeleted": true` after
/// ``EventStore/deleteStream(_:expectedVersion:)``.
public struct StreamMetadata: Sendable, Hashable {
    /// Keep only the last `maxCount` events visible (at least 1).
    public var maxCount: UInt64?
    /// Hide events appended longer ago than this (positive). Timestamps are
    /// taken to be nondecreasing within a stream.
    public var maxAge: Duration?
    /// Hide events with versions below this.
    public var truncateBefore: UInt64?
    /// Set by a soft delete: while no event at or after ``truncateBefore``
    /// exists, the stream reads as not found.
    public internal(set) var isSoftDeleted: Bool = false

    public init(maxCount: UInt64? = nil, maxAge: Duration? = nil, truncateBefore: UInt64? = nil) {
        self.maxCount = maxCount
        self.maxAge = maxAge
        self.truncateBefore = truncateBefore
    }

    /// True when no rule hides anything.
    var isEmpty: Bool { maxCount == nil && maxAge == nil && truncateBefore == nil && !isSoftDeleted }

    /// Throws naming the first value out of range.
    func validate(stream: String) throws {
        if let maxCount, maxCount == 0 {
            throw RingstoreError(.invalidArgument, "maxCount must be at least 1 (got 0)", stream: stream)
        }
        if let maxAge, maxAge <= .zero {
            throw RingstoreError(.invalidArgument, "maxAge must be positive (got \(maxAge))", stream: stream)
        }
    }
}

// MARK: - JSON

extension StreamMetadata: Codable {
    private enum CodingKeys: String, CodingKey {
        case maxCount = "$maxCount"
        case maxAge = "$maxAge"
        case truncateBefore = "$tb"
        case softDeleted = "$softDeleted"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxCount = try container.decodeIfPresent(UInt64.self, forKey: .maxCount)
        maxAge = try container.decodeIfPresent(Double.self, forKey: .maxAge).map { Duration.seconds($0) }
        truncateBefore = try container.decodeIfPresent(UInt64.self, forKey: .truncateBefore)
        isSoftDeleted = try container.decodeIfPresent(Bool.self, forKey: .softDeleted) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(maxCount, forKey: .maxCount)
        if let maxAge {
            let (seconds, attoseconds) = maxAge.components
            if attoseconds == 0 {
                try container.encode(seconds, forKey: .maxAge)
            } else {
                try container.encode(Double(seconds) + Double(attoseconds) / 1e18, forKey: .maxAge)
            }
        }
        try container.encodeIfPresent(truncateBefore, forKey: .truncateBefore)
        if isSoftDeleted { try container.encode(true, forKey: .softDeleted) }
    }

    /// The JSON stored in the metadata stream.
    func encodedJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try encoder.encode(self))
    }

    /// Decodes a stored metadata event's data.
    static func decode(_ bytes: [UInt8], stream: String) throws -> StreamMetadata {
        do {
            return try JSONDecoder().decode(StreamMetadata.self, from: Data(bytes))
        } catch {
            throw RingstoreError(.corruptData,
                                 "the metadata of stream \"\(stream)\" is not valid metadata JSON: \(String(decoding: bytes.prefix(200), as: UTF8.self))",
                                 stream: stream)
        }
    }
}

/// What the store knows of one stream's metadata stream: its last event, decoded.
struct StreamMetadataState: Sendable, Hashable {
    var metadata = StreamMetadata()
    /// The stream was hard-deleted: it can never be written again.
    var tombstoned = false
    /// Version of the metadata-stream event this came from (nil: there is none).
    var version: UInt64?

    static let none = StreamMetadataState()

    /// True if `self` comes from a later metadata event than `other`.
    func isNewer(than other: StreamMetadataState) -> Bool {
        switch (version, other.version) {
        case (nil, _): false
        case (.some, nil): true
        case (.some(let mine), .some(let theirs)): mine > theirs
        }
    }
}

/// Names and event types of the system streams that carry metadata and snapshots.
enum SystemStreams {
    static let metadataPrefix = "$$"
    static let snapshotPrefix = "$snapshot-"
    static let metadataEventType = "$metadata"
    static let tombstoneEventType = "$streamDeleted"
    static let snapshotEventType = "$snapshot"

    static func metadataStream(of stream: String) -> String { metadataPrefix + stream }

    /// The metadata stream's name, for writing: throws if it would exceed the
    /// stream-name limit (user names longer than 1022 bytes can have no metadata).
    static func writableMetadataStream(of stream: String) throws -> String {
        let name = metadataStream(of: stream)
        guard name.utf8.count <= NameRules.maxStreamNameBytes else {
            throw RingstoreError(.invalidStreamName,
                                 "streams with names longer than \(NameRules.maxStreamNameBytes - metadataPrefix.utf8.count) bytes cannot have metadata or be deleted (the metadata stream's name adds \"\(metadataPrefix)\")",
                                 stream: String(stream.prefix(64)))
        }
        return name
    }
    static func snapshotStream(of stream: String) -> String { snapshotPrefix + stream }

    /// True for names reserved for the system (beginning with `$`).
    static func isSystem(_ stream: String) -> Bool { stream.utf8.first == UInt8(ascii: "$") }

    /// The user stream whose deletion also closes `stream` for writing: itself,
    /// or `x` for the metadata stream `$$x`.
    static func deletionOwner(of stream: String) -> String? {
        if stream.hasPrefix(metadataPrefix) { return String(stream.dropFirst(metadataPrefix.count)) }
        return isSystem(stream) ? nil : stream
    }
}
