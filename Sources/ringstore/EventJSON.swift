import Foundation
import Ringstore

/// Events as JSON Lines: `{"stream","type","id","version","position","timestamp","data"|"dataBase64","metadata"?}`.
/// JSON data is embedded as a JSON value; anything else (or data that does not
/// parse) goes base64-encoded in `dataBase64`. `import` reads the same shape.
enum EventJSON {
    static func line(_ event: RecordedEvent) -> String {
        var fields = [
            "\"stream\":" + quoted(event.stream),
            "\"type\":" + quoted(event.type),
            "\"id\":" + quoted(event.id.uuidString.lowercased()),
            "\"version\":\(event.version)",
            "\"position\":\(event.position)",
            "\"timestamp\":" + quoted(ISO8601DateFormatter().string(from: event.timestamp)),
        ]
        fields.append(payload("data", event.data, json: event.contentType == .json))
        if !event.metadata.isEmpty { fields.append(payload("metadata", event.metadata, json: event.contentType == .json)) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private static func payload(_ name: String, _ bytes: [UInt8], json: Bool) -> String {
        if json, (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil,
           let text = String(bytes: bytes, encoding: .utf8), !text.contains("\n") {
            return "\"\(name)\":" + text
        }
        return "\"\(name)Base64\":" + quoted(Data(bytes).base64EncodedString())
    }

    static func quoted(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed, .withoutEscapingSlashes])
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
