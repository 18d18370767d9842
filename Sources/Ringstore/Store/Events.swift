#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How an event's data (and metadata) bytes are to be read.
public enum ContentType: Sendable, Hashable {
    /// UTF-8 JSON.
    case json
    /// Opaque bytes.
    case binary
}

/// An event to append: its identity, its type and its bytes.
public struct EventData: Sendable, Hashable {
    /// The event's identity; appending the same IDs again at the same expected
    /// version is recognised as a retry and writes nothing.
    public var id: UUID
    /// The event type, e.g. `"OrderPlaced"`: 1-255 bytes of UTF-8.
    public var type: String
    /// The payload.
    public var data: [UInt8]
    /// Optional metadata bytes (correlation IDs and the like).
    public var metadata: [UInt8]
    /// How `data` and `metadata` are encoded.
    public var contentType: ContentType

    public init(id: UUID = .newEventID(), type: String, data: [UInt8], metadata: [UInt8] = [], contentType: ContentType = .json) {
        self.id = id
        self.type = type
        self.data = data
        self.metadata = metadata
        self.contentType = contentType
    }

    /// An event whose data is the UTF-8 bytes of `json`.
    public init(id: UUID = .newEventID(), type: String, json: String, metadata: [UInt8] = []) {
        self.init(id: id, type: type, data: Array(json.utf8), metadata: metadata, contentType: .json)
    }
}

/// An event as stored: the appended ``EventData`` plus where and when it landed.
public struct RecordedEvent: Sendable, Hashable {
    /// The stream it belongs to.
    public var stream: String
    /// Its version within the stream: 0 for the first event, no gaps.
    public var version: UInt64
    /// Its global position: the journal's logical byte offset of its record. Grows with every append, across all streams.
    public var position: UInt64
    public var id: UUID
    public var type: String
    public var data: [UInt8]
    public var metadata: [UInt8]
    public var contentType: ContentType
    /// When it was appended, in nanoseconds since 1970-01-01 UTC.
    public var timestampNanoseconds: Int64

    /// When it was appended.
    public var timestamp: Date {
        Date(timeIntervalSince1970: Double(timestampNanoseconds) / 1_000_000_000)
    }
}

/// What the writer expects the stream's state to be; the append fails with
/// ``RingstoreError/Code/wrongExpectedVersion`` otherwise.
public enum ExpectedVersion: Sendable, Hashable {
    /// No check.
    case any
    /// The stream must have no events.
    case noStream
    /// The stream must have at least one event.
    case streamExists
    /// The stream's last event must have exactly this version.
    case exact(UInt64)
}

/// Where an append landed.
public struct AppendResult: Sendable, Hashable {
    /// Version of the first event appended.
    public var firstVersion: UInt64
    /// Version of the last event appended: the `.exact` to expect next.
    public var lastVersion: UInt64
    /// Global position of the first event.
    public var firstPosition: UInt64
    /// Global position of the last event.
    public var lastPosition: UInt64
}

/// The direction of a read.
public enum ReadDirection: Sendable, Hashable {
    case forwards
    case backwards
}

/// Where in a stream a read starts.
public enum StreamRevision: Sendable, Hashable {
    /// The first event (version 0, or the oldest still kept).
    case start
    /// The last event (useful with ``ReadDirection/backwards``).
    case end
    /// The event with this version (inclusive).
    case version(UInt64)
}

/// Where in the global order (`$all`) a read starts.
public enum LogPosition: Sendable, Hashable {
    /// The oldest event.
    case start
    /// The newest event.
    case end
    /// The event at this global position (inclusive); it must be an event's position.
    case position(UInt64)
}
