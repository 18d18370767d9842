import Foundation
import Ringstore

/// Events as JSON Lines, the shape `read`, `tail` and `export` print and `import` reads:
/// `{"stream","type","id","version","position","timestamp","data"|"dataBase64","metadata"|"metadataBase64"?}`.
///
/// JSON data (and metadata) is embedded as the JSON value it is, byte for byte;
/// anything else, JSON that does not check (``JSONLine/isValidJSONValue(_:)``: the
/// library API lets any bytes be flagged JSON), and JSON holding a raw newline
/// (it would split the line) goes base64-encoded in `dataBase64`. `metadata` is
/// left out when empty. The timestamp is UTC, whole seconds.
public enum EventJSON {
    /// Appends `event` as one line, `\n` included.
    public static func appendLine(_ event: RecordedEvent, to output: inout JSONByteBuffer) {
        output.append("{\"stream\":")
        output.append(quoted: event.stream)
        output.append(",\"type\":")
        output.append(quoted: event.type)
        output.append(",\"id\":")
        output.append(quotedUUID: event.id)
        output.append(",\"version\":")
        output.append(decimal: event.version)
        output.append(",\"position\":")
        output.append(decimal: event.position)
        output.append(",\"timestamp\":")
        output.append(quotedTimestampNanoseconds: event.timestampNanoseconds)
        let json = event.contentType == .json
        if json, isEmbeddable(event.data) {
            output.append(",\"data\":")
            output.append(raw: event.data)
        } else {
            output.append(",\"dataBase64\":")
            output.append(quotedBase64: event.data)
        }
        if !event.metadata.isEmpty {
            if json, isEmbeddable(event.metadata) {
                output.append(",\"metadata\":")
                output.append(raw: event.metadata)
            } else {
                output.append(",\"metadataBase64\":")
                output.append(quotedBase64: event.metadata)
            }
        }
        output.append("}\n")
    }

    /// `event` as one line, without the newline.
    public static func line(_ event: RecordedEvent) -> String {
        var output = JSONByteBuffer()
        appendLine(event, to: &output)
        return String(decoding: output.bytes.dropLast(), as: UTF8.self)
    }

    /// `text` as a JSON string, quotes included.
    public static func quoted(_ text: String) -> String {
        var output = JSONByteBuffer()
        output.append(quoted: text)
        return String(decoding: output.bytes, as: UTF8.self)
    }

    /// JSON that can stand as a member's value on one line.
    private static func isEmbeddable(_ bytes: [UInt8]) -> Bool {
        // A raw newline can only be whitespace between tokens in valid JSON, but it would still end the line.
        let hasNewline = bytes.withUnsafeBytes { !$0.isEmpty && memchr($0.baseAddress!, 0x0A, $0.count) != nil }
        return !hasNewline && JSONLine.isValidJSONValue(bytes)
    }
}
