import Foundation
import NIOHTTP1
import Ringstore
import RingstoreHTTPClient
@testable import RingstoreServer
import Testing

/// A temporary directory for one test, removed when the test ends.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = "\(FileManager.default.temporaryDirectory.path)/ringstore-server-test-\(safe)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A server on a free loopback port over a temporary folder, in this process,
/// with small stores (1 MiB journal) so limits are quick to reach.
final class TestServer: Sendable {
    let directory: TemporaryDirectory
    let server: RingstoreHTTPServer
    let running: RunningServer
    var port: Int { running.port }

    static func start(_ name: String = #function, token: String? = nil,
                      configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let directory = TemporaryDirectory(name)
        var configuration = ServerConfiguration(dataRoot: directory.path + "/stores")
        configuration.port = 0
        configuration.token = token
        var store = Configuration()
        store.journalCapacity = 1 << 20
        store.maxEventSize = 64 << 10
        store.journalFullWait = .milliseconds(200)
        store.readerWait = .seconds(5)
        configuration.storeConfiguration = store
        configure(&configuration)
        let server = try RingstoreHTTPServer(configuration: configuration)
        return TestServer(directory: directory, server: server, running: try await RunningServer.start(server))
    }

    private init(directory: TemporaryDirectory, server: RingstoreHTTPServer, running: RunningServer) {
        self.directory = directory
        self.server = server
        self.running = running
    }

    func stop() async throws { try await running.stop() }

    /// One request on a new connection.
    func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> HTTPClientResponse {
        try await HTTPClient.withConnection(host: "127.0.0.1", port: port) { connection in
            try await connection.execute(method, path, headers: headers, body: body)
        }
    }

    /// POST a JSON body.
    func post(_ path: String, json: String, headers: [(String, String)] = []) async throws -> HTTPClientResponse {
        try await request(.POST, path, headers: [("Content-Type", "application/json")] + headers, body: Array(json.utf8))
    }

    func put(_ path: String, json: String? = nil, headers: [(String, String)] = []) async throws -> HTTPClientResponse {
        try await request(.PUT, path, headers: (json == nil ? [] : [("Content-Type", "application/json")]) + headers,
                          body: json.map { Array($0.utf8) })
    }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> HTTPClientResponse {
        try await request(.GET, path, headers: headers)
    }

    /// Creates a store and checks the answer.
    func createStore(_ name: String = "s") async throws {
        let response = try await put("/stores/\(name)")
        #expect(response.status == 201, "\(response.text)")
    }
}

extension HTTPClientResponse {
    /// The body as a JSON object.
    func json() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// The `code` of an error body.
    var errorCode: String? { (try? json())?["code"] as? String }
}

typealias SSEReader = ServerSentEvents

/// The `ringstore` binary built next to the tests.
enum BuiltBinary {
    static var ringstore: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("ringstore").path) {
            directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")
        }
        return directory.appendingPathComponent("ringstore").path
    }
}

/// Runs blocking work (waiting for a child process, reading its pipes) on a
/// thread of its own, never on one of Swift's cooperative threads: the servers
/// these tests start run their handlers on that small pool (two threads on a
/// two-core machine), so a test that blocked two of them while a child process
/// waited for an answer from the server would wait for ever.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}
