import Foundation
import Ringstore

extension EventJSON {
    /// The event an input object describes: `{"type", "data" (any JSON value,
    /// kept byte for byte) | "dataBase64", "metadata"? | "metadataBase64"?,
    /// "id"?}`. Shared by `ringstore import` (one per line) and the server's
    /// append route, so both accept and refuse the same input with the same words.
    public static func eventData(from json: JSONLine) throws -> EventData {
        guard let type = try json.string("type") else { throw JSONLine.ParseError(description: "missing \"type\"") }
        var contentType = ContentType.json
        let data: [UInt8]
        if let raw = json.members["data"] {
            guard json.members["dataBase64"] == nil else { throw JSONLine.ParseError(description: "give \"data\" or \"dataBase64\", not both") }
            data = Array(raw)
        } else if let base64 = try json.string("dataBase64") {
            guard let decoded = Data(base64Encoded: base64) else { throw JSONLine.ParseError(description: "\"dataBase64\" is not base64") }
            data = Array(decoded)
            contentType = .binary
        } else {
            throw JSONLine.ParseError(description: "missing \"data\" or \"dataBase64\"")
        }
        var metadata: [UInt8] = []
        if let raw = json.members["metadata"] {
            metadata = Array(raw)
        } else if let base64 = try json.string("metadataBase64") {
            guard let decoded = Data(base64Encoded: base64) else { throw JSONLine.ParseError(description: "\"metadataBase64\" is not base64") }
            metadata = Array(decoded)
        }
        var event = EventData(type: type, data: data, metadata: metadata, contentType: contentType)
        if json.members["id"] != nil {
            guard let text = try? json.string("id") else { throw JSONLine.ParseError(description: "\"id\" must be a UUID string") }
            guard let id = UUID(uuidString: text) else { throw JSONLine.ParseError(description: "\"id\" \(text) is not a UUID") }
            event.id = id
        }
        return event
    }
}
