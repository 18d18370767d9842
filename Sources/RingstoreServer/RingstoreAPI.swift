import Foundation
import HTTPTypes
import Hummingbird
import Ringstore

/// What every handler shares: the stores, the settings and the helpers that
/// turn a request's path and query into names and numbers (each mistake a 400).
struct RingstoreAPI: Sendable {
    let stores: StoreService
    let configuration: ServerConfiguration

    /// Most events one read page returns.
    static let maxPageCount = 10_000
    /// Events per read page when `count` is not given.
    static let defaultPageCount = 100

    /// The store named in the path: 400 for a bad name, 404 if there is none, 503 while stores open or close.
    func store(_ context: ServerContext) throws -> (name: String, store: EventStore) {
        let name = try PathNames.decode(context.parameters.get("store") ?? "", what: "store name")
        do { try StoreManager.validateName(name) } catch let error as RingstoreError { throw APIError(error, retryAfter: retryAfter) }
        switch stores.lookup(name) {
        case .store(let store): return (name, store)
        case .notFound: throw APIError.noSuchStore(name)
        case .notReady: throw APIError.notReady(retryAfter: retryAfter)
        }
    }

    /// The stream named in the path.
    func stream(_ context: ServerContext) throws -> String {
        try PathNames.decode(context.parameters.get("stream") ?? "", what: "stream name")
    }

    var retryAfter: Int { configuration.retryAfterSeconds }

    /// A query parameter that must be an unsigned number, if present.
    static func number(_ request: Request, _ name: String) throws(APIError) -> UInt64? {
        guard let text = request.uri.queryParameters[Substring(name)] else { return nil }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(text) else {
            throw .badRequest("query parameter \(name)=\(text) must be a number from 0 to \(UInt64.max)")
        }
        return value
    }

    /// `count`: 1 to ``maxPageCount``, ``defaultPageCount`` if absent.
    static func count(_ request: Request) throws(APIError) -> Int {
        guard let count = try number(request, "count") else { return defaultPageCount }
        guard count >= 1, count <= UInt64(maxPageCount) else {
            throw .badRequest("query parameter count=\(count) must be from 1 to \(maxPageCount)")
        }
        return Int(count)
    }

    /// `direction`: `forwards` (default) or `backwards`.
    static func direction(_ request: Request) throws(APIError) -> ReadDirection {
        switch request.uri.queryParameters["direction"] {
        case nil, "forwards": return .forwards
        case "backwards": return .backwards
        case let other?: throw .badRequest("query parameter direction=\(other) must be forwards or backwards")
        }
    }

    /// A query parameter that must be non-empty text, if present.
    static func text(_ request: Request, _ name: String) throws(APIError) -> String? {
        guard let value = request.uri.queryParameters[Substring(name)] else { return nil }
        guard !value.isEmpty else { throw .badRequest("query parameter \(name) must not be empty") }
        return String(value)
    }

    /// Runs a library call, turning its errors into API errors.
    func calling<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RingstoreError {
            throw APIError(error, retryAfter: retryAfter)
        }
    }

    /// The request's body, up to `limit` bytes: a Content-Length over it is refused
    /// before anything is read, and a chunked body as soon as it passes it.
    static func body(_ request: Request, limit: Int) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(.contentTooLarge, "bodyTooLarge", "the body is \(length) bytes; this store takes at most \(limit) per request")
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "bodyTooLarge", "the body is over \(limit) bytes, the most this store takes per request")
        }
    }

    /// Refuses a body that is not declared as JSON (415): `application/json`, any
    /// case, parameters (`; charset=utf-8`) allowed. Compared as bytes, on every append.
    static func requireJSON(_ request: Request) throws(APIError) {
        let header = request.headers[.contentType]
        if let header, isJSONMediaType(header) { return }
        throw APIError(.unsupportedMediaType, "unsupportedMediaType",
                       "the body must be JSON, sent with Content-Type: application/json (got \(header.map { "\"\($0)\"" } ?? "none"))")
    }

    static func isJSONMediaType(_ header: String) -> Bool {
        let expected = Array("application/json".utf8)
        var utf8 = Substring(header).utf8[...]
        while utf8.first == UInt8(ascii: " ") || utf8.first == UInt8(ascii: "\t") { utf8 = utf8.dropFirst() }
        guard utf8.count >= expected.count else { return false }
        for (byte, wanted) in zip(utf8.prefix(expected.count), expected) {
            let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if lowered != wanted { return false }
        }
        let rest = utf8.dropFirst(expected.count).drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        return rest.isEmpty || rest.first == UInt8(ascii: ";")
    }

    /// The largest body an append to `store` may have: its largest append (half
    /// the journal) grown by a third (base64) plus room for the JSON around it.
    static func bodyLimit(of store: EventStore) -> Int {
        let largestAppend = Int(store.configuration.journalCapacity / 2)
        return largestAppend + largestAppend / 3 + (64 << 10)
    }
}
