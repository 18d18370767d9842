import ArgumentParser
import Foundation
import NIOHTTP1
import Ringstore
import RingstoreHTTPClient
import RingstoreJSONLines

/// A store of a running `ringstore serve`, for the subcommands' `--url` mode.
///
/// The server prints events with the same code the command uses (``EventJSON``),
/// so `read`, `export` and `tail` copy each event's JSON from the answer as it
/// came, a line each, and their output matches what they print for a folder.
/// An error answer becomes a `RingstoreError` with the server's message (and
/// the code, so a version conflict still exits with status 3).
struct RemoteStore: Sendable {
    let address: HTTPAddress
    let token: String?
    /// `/stores/NAME`.
    let storePath: String

    init(url: String, token: String?) throws {
        do {
            address = try HTTPAddress(url)
        } catch {
            throw ValidationError("--url \(url): \(error)")
        }
        guard address.path.hasPrefix("/stores/"), address.path.dropFirst("/stores/".count).allSatisfy({ $0 != "/" }),
              address.path.count > "/stores/".count else {
            throw ValidationError("--url \(url) must name a store: http://HOST:PORT/stores/NAME")
        }
        storePath = address.path
        self.token = token
    }

    /// Runs `body` on one keep-alive connection to the server.
    func withConnection<T>(_ body: (Connection) async throws -> T) async throws -> T {
        do {
            return try await HTTPClient.withConnection(host: address.host, port: address.port) { connection in
                try await body(Connection(store: self, http: connection))
            }
        } catch let error as RingstoreError {
            throw error
        } catch let error as HTTPClientError {
            throw RingstoreError(.ioError, "server \(address.host):\(address.port): \(error.description)")
        } catch let error as ExitCode {
            throw error
        } catch let error as OutputError {
            throw error
        } catch {
            throw RingstoreError(.ioError, "cannot reach the server at \(address.host):\(address.port): \(error)")
        }
    }

    /// One connection: requests go out one after another.
    struct Connection {
        let store: RemoteStore
        let http: HTTPConnection

        var headers: [(String, String)] { store.token.map { [("Authorization", "Bearer \($0)")] } ?? [] }

        /// A request whose answer must have `expected` status; anything else is thrown as the server's error.
        func call(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, extraHeaders: [(String, String)] = [],
                  expected: Int = 200) async throws -> [UInt8] {
            var headers = headers + extraHeaders
            if body != nil { headers.append(("Content-Type", "application/json")) }
            let response = try await http.execute(method, store.storePath + path, headers: headers, body: body)
            guard response.status == expected else { throw RemoteStore.error(from: response) }
            return response.body
        }

        /// Pages of events from `path` (with `from`/`count` added), each event's JSON as it came, until `limit` events or the end.
        func events(_ path: String, query: [(String, String)], from: UInt64?, limit: Int,
                    _ each: ([ArraySlice<UInt8>]) throws -> Void) async throws {
            var next = from
            var remaining = limit
            repeat {
                var parameters = query
                if let next { parameters.append(("from", "\(next)")) }
                parameters.append(("count", "\(min(remaining, 10_000))"))
                let page = try JSONLine(try await call(.GET, path + RemoteStore.query(parameters)))
                guard let events = page.members["events"] else { throw RingstoreError(.corruptData, "the server's answer has no events") }
                let elements = try JSONLine.arrayElements(Array(events))
                try each(elements)
                remaining -= elements.count
                let nextText = page.members["next"].map { String(decoding: $0, as: UTF8.self) } ?? "null"
                next = UInt64(nextText)
                if next == nil { return }
            } while remaining > 0
        }
    }

    /// Prints the events at `path` to stdout as JSON Lines, each as the server
    /// sent it (`read` and `export` against a server).
    func printEvents(_ path: String, query: [(String, String)] = [], from: UInt64? = nil, limit: Int = .max) async throws {
        var output = StandardOutput()
        try await withConnection { connection in
            try await connection.events(path, query: query, from: from, limit: limit) { events in
                for event in events {
                    output.buffer.append(raw: Array(event))
                    output.buffer.append("\n")
                    try output.flushIfFull()
                }
            }
        }
        try output.flush()
    }

    /// `?a=b&c=d`, percent-encoded; "" for none.
    static func query(_ parameters: [(String, String)]) -> String {
        parameters.isEmpty ? "" : "?" + parameters.map { "\($0.0)=\(percentEncoded($0.1))" }.joined(separator: "&")
    }

    /// `/streams/NAME` with the name percent-encoded (a `/` in it too).
    static func streamPath(_ stream: String) -> String { "/streams/" + percentEncoded(stream) }

    /// An error answer as the `RingstoreError` the library would have thrown.
    static func error(from response: HTTPClientResponse) -> RingstoreError {
        let json = try? JSONLine(response.body)
        let code = (try? json?.string("code")) ?? nil
        let message = ((try? json?.string("message")) ?? nil) ?? "the server answered \(response.status): \(response.text.prefix(200))"
        let codes: [String: RingstoreError.Code] = [
            "wrongExpectedVersion": .wrongExpectedVersion, "streamNotFound": .streamNotFound, "streamDeleted": .streamDeleted,
            "storeNotFound": .storeNotFound, "journalFull": .journalFull, "idempotencyConflict": .idempotencyConflict,
            "eventTooLarge": .eventTooLarge, "appendTooLarge": .appendTooLarge, "invalidStreamName": .invalidStreamName,
        ]
        return RingstoreError(code.flatMap { codes[$0] } ?? .invalidArgument, message)
    }

    /// An event as an append's body: `{"id","type","data"|"dataBase64","metadata"|"metadataBase64"}`.
    static func body(of event: EventData) -> JSONByteBuffer {
        var json = JSONByteBuffer()
        json.append("{\"id\":")
        json.append(quotedUUID: event.id)
        json.append(",\"type\":")
        json.append(quoted: event.type)
        if event.contentType == .json {
            json.append(",\"data\":")
            json.append(raw: event.data)
        } else {
            json.append(",\"dataBase64\":")
            json.append(quotedBase64: event.data)
        }
        if !event.metadata.isEmpty {
            if JSONLine.isValidJSONValue(event.metadata) {
                json.append(",\"metadata\":")
                json.append(raw: event.metadata)
            } else {
                json.append(",\"metadataBase64\":")
                json.append(quotedBase64: event.metadata)
            }
        }
        json.append("}")
        return json
    }

    /// The `Expected-Version` header's text.
    static func header(_ expected: ExpectedVersion) -> String {
        switch expected {
        case .any: "any"
        case .noStream: "no-stream"
        case .streamExists: "exists"
        case .exact(let version): "\(version)"
        }
    }
}
