import HTTPTypes
import Hummingbird
import Ringstore
import RingstoreJSONLines

/// An error as the API reports it: a status and a JSON body
/// `{"code", "message", "stream"?, "currentVersion"?}` (409 carries the
/// stream's current version, null when it has no events), plus `Retry-After`
/// on 503.
///
/// Library errors map by code: bad input → 400, too large → 413, a wrong
/// expected version or a conflicting retry → 409, no such stream or store → 404,
/// a tombstoned stream → 410, the ring full or a reader timeout → 503. Only a
/// store that cannot read or write its files gives 500.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var stream: String?
    /// For 409: the stream's current version (`.some(nil)`: it has none).
    var currentVersion: UInt64??
    var retryAfter: Int?

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, stream: String? = nil,
         currentVersion: UInt64?? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.stream = stream
        self.currentVersion = currentVersion
        self.retryAfter = retryAfter
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "badRequest", message) }

    static func notReady(retryAfter: Int) -> APIError {
        APIError(.serviceUnavailable, "notReady", "the server is opening or closing its stores; try again shortly", retryAfter: retryAfter)
    }

    static func noSuchStore(_ name: String) -> APIError {
        APIError(.notFound, "storeNotFound", "there is no store named \"\(name)\" (create it with PUT /stores/\(name))")
    }

    /// The answer for a library error.
    init(_ error: RingstoreError, retryAfter: Int) {
        let status: HTTPResponse.Status
        var retry: Int?
        switch error.code {
        case .invalidArgument, .invalidStreamName: status = .badRequest
        case .eventTooLarge, .appendTooLarge: status = .contentTooLarge
        case .wrongExpectedVersion, .idempotencyConflict: status = .conflict
        case .streamNotFound, .storeNotFound: status = .notFound
        case .streamDeleted: status = .gone
        case .journalFull, .readerTimeout, .storeClosed, .storeLocked:
            status = .serviceUnavailable
            retry = retryAfter
        default: status = .internalServerError
        }
        self.init(status, error.code.description, error.message, stream: error.stream,
                  currentVersion: error.code == .wrongExpectedVersion ? .some(error.currentVersion) : nil, retryAfter: retry)
    }

    /// The JSON body.
    var body: [UInt8] {
        var json = JSONByteBuffer()
        json.append("{\"code\":")
        json.append(quoted: code)
        json.append(",\"message\":")
        json.append(quoted: message)
        if let stream {
            json.append(",\"stream\":")
            json.append(quoted: stream)
        }
        if let currentVersion {
            json.append(",\"currentVersion\":")
            if let version = currentVersion { json.append(decimal: version) } else { json.append("null") }
        }
        json.append("}")
        return json.bytes
    }

    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
