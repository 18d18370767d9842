import Ringstore
import RingstoreJSONLines

/// A stream's metadata as JSON, the one text both `GET …/metadata` and
/// `ringstore metadata` (with `--data` or `--url`) print, so that the command's
/// output is the same against a folder and against a server:
/// `{"maxCount","maxAge" (seconds),"truncateBefore","softDeleted","metadataVersion"}`.
public enum StreamMetadataJSON {
    /// `version` is the metadata stream's last version (nil: never set).
    public static func append(_ metadata: StreamMetadata, version: UInt64?, to json: inout JSONByteBuffer) {
        json.append("{\"maxCount\":")
        JSONResponses.append(optional: metadata.maxCount, to: &json)
        json.append(",\"maxAge\":")
        if let maxAge = metadata.maxAge {
            // Whole seconds print without a fraction ("3600", not "3600.0").
            let (seconds, attoseconds) = maxAge.components
            json.append(raw: Array((attoseconds == 0 ? "\(seconds)" : "\(Double(seconds) + Double(attoseconds) / 1e18)").utf8))
        } else {
            json.append("null")
        }
        json.append(",\"truncateBefore\":")
        JSONResponses.append(optional: metadata.truncateBefore, to: &json)
        json.append(",\"softDeleted\":")
        json.append(metadata.isSoftDeleted ? "true" : "false")
        json.append(",\"metadataVersion\":")
        JSONResponses.append(optional: version, to: &json)
        json.append("}")
    }

    /// The same, as a string.
    public static func text(_ metadata: StreamMetadata, version: UInt64?) -> String {
        var json = JSONByteBuffer()
        append(metadata, version: version, to: &json)
        return String(decoding: json.bytes, as: UTF8.self)
    }
}
