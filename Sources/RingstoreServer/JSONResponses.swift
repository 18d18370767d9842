import HTTPTypes
import Hummingbird
import Ringstore
import RingstoreJSONLines

/// Building JSON answers as bytes (``JSONByteBuffer``), the same way the
/// command line prints events, so an event looks the same in both.
enum JSONResponses {
    static func json(_ status: HTTPResponse.Status = .ok, _ bytes: [UInt8], headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func json(_ status: HTTPResponse.Status = .ok, _ build: (inout JSONByteBuffer) -> Void) -> Response {
        var buffer = JSONByteBuffer()
        build(&buffer)
        return json(status, buffer.bytes)
    }

    /// `{"<key>": <value>}` members written in order, for small answers.
    static func appendEvents(_ events: some Collection<RecordedEvent>, to json: inout JSONByteBuffer) {
        json.append("[")
        var first = true
        for event in events {
            if !first { json.append(",") }
            first = false
            EventJSON.appendLine(event, to: &json)
            json.bytes.removeLast()  // the line's newline
        }
        json.append("]")
    }

    static func append(optional value: UInt64?, to json: inout JSONByteBuffer) {
        if let value { json.append(decimal: value) } else { json.append("null") }
    }
}
