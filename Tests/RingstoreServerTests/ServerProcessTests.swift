import Foundation
import Ringstore
import RingstoreHTTPClient
import Synchronization
import Testing

/// `ringstore serve` as a separate process: SIGTERM in the middle of ingest
/// loses no acknowledged event, and `/metrics` carries the stores' metrics.
@Suite struct ServerProcessTests {
    /// A `ringstore serve` child process; `listening` and `ready` come from its standard output.
    final class ServeProcess: Sendable {
        let process: Process
        let port: Int
        /// Its standard error, when started with `captureStandardError` (else inherited).
        let standardError: Pipe?

        init(data: String, logLevel: String = "warning", captureStandardError: Bool = false) async throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: BuiltBinary.ringstore)
            process.arguments = ["serve", "--data", data, "--http", "127.0.0.1:0", "--log-level", logLevel]
            standardError = captureStandardError ? Pipe() : nil
            if let standardError { process.standardError = standardError }
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RINGSTORE_") }
            environment["RINGSTORE_JOURNAL_MB"] = "4"
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            self.process = process
            // Read lines until "ready" (on a thread of its own: the read blocks).
            let lines = try await offThePool {
                var text = ""
                while !text.contains("ringstore: ready\n") {
                    let data = output.fileHandleForReading.availableData
                    if data.isEmpty { break }
                    text += String(decoding: data, as: UTF8.self)
                }
                return text
            }
            guard lines.contains("ringstore: ready"), let portText = lines.split(separator: "\n").first?.split(separator: ":").last,
                  let port = Int(portText) else {
                process.terminate()
                throw HTTPClientError(description: "ringstore serve did not start: \(lines)")
            }
            self.port = port
        }

        /// Everything written to standard error, once the process has exited.
        func standardErrorText() async throws -> String {
            guard let standardError else { return "" }
            return try await offThePool { String(decoding: standardError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        }

        /// Sends SIGTERM and waits for the exit status.
        func terminate() async -> Int32 {
            kill(process.processIdentifier, SIGTERM)
            return (try? await offThePool { [process] in
                process.waitUntilExit()
                return process.terminationStatus
            }) ?? -1
        }
    }

    /// What the writers were told: stream, version and event ID of every 201.
    final class Acknowledgements: Sendable {
        private let list = Mutex<[(stream: String, version: Int, id: String)]>([])
        private let target: Int
        private let reached: AsyncStream<Void>.Continuation
        let reachedTarget: AsyncStream<Void>

        init(target: Int) {
            self.target = target
            (reachedTarget, reached) = AsyncStream<Void>.makeStream()
        }

        func add(stream: String, version: Int, id: String) {
            let count = list.withLock { $0.append((stream, version, id)); return $0.count }
            if count == target { reached.yield(); reached.finish() }
        }

        var all: [(stream: String, version: Int, id: String)] { list.withLock { $0 } }
    }

    /// `--log-level debug`: one line per request, with its request ID, method,
    /// path, status and duration; below debug, no request lines.
    @Test func debugLevelLogsOneLinePerRequestWithItsMetadata() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltBinary.ringstore), "build ringstore first")
        let directory = TemporaryDirectory()
        for level in ["debug", "info"] {
            let server = try await ServeProcess(data: directory.path + "/stores-\(level)", logLevel: level, captureStandardError: true)
            let statuses = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
                [try await connection.execute(.GET, "/health").status, try await connection.execute(.GET, "/stores/none/streams").status]
            }
            #expect(statuses == [200, 404])
            #expect(await server.terminate() == 0)
            let lines = try await server.standardErrorText().split(separator: "\n").filter { $0.hasSuffix(" request") }
            guard level == "debug" else {
                #expect(lines.isEmpty, "request lines below debug level: \(lines)")
                continue
            }
            #expect(lines.count == 2, "\(lines)")
            let health = try #require(lines.first { $0.contains("path=/health") })
            for part in ["hb.request.id=", "method=GET", "status=200", "ms="] { #expect(health.contains(part), "\(health)") }
            #expect(lines.contains { $0.contains("path=/stores/none/streams") && $0.contains("status=404") }, "\(lines)")
        }
    }

    @Test func sigtermDuringIngestLosesNoAcknowledgedEvent() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltBinary.ringstore), "build ringstore first")
        let directory = TemporaryDirectory()
        let data = directory.path + "/stores"
        let server = try await ServeProcess(data: data)
        let created = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { try await $0.execute(.PUT, "/stores/s") }
        #expect(created.status == 201)

        let acknowledgements = Acknowledgements(target: 300)
        let writers = (0..<8).map { writer in
            Task {
                // Each writer appends over one keep-alive connection until the server goes away.
                try? await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
                    for i in 0..<100_000 {
                        let id = UUID().uuidString.lowercased()
                        let body = #"{"type":"T","data":{"writer":\#(writer),"i":\#(i)},"id":"\#(id)"}"#
                        let response = try await connection.execute(.POST, "/stores/s/streams/w\(writer)",
                                                                     headers: [("Content-Type", "application/json")], body: Array(body.utf8))
                        guard response.status == 201 else { return }
                        let version = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])["firstVersion"] as? Int
                        acknowledgements.add(stream: "w\(writer)", version: version ?? -1, id: id)
                    }
                }
            }
        }
        for await _ in acknowledgements.reachedTarget { break }

        let metrics = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { try await $0.execute(.GET, "/metrics") }
        #expect(metrics.text.contains(#"ringstore_appends_total{store="s"}"#))
        #expect(metrics.text.contains(#"ringstore_http_requests_total{route="/stores/{store}/streams/{stream}",method="POST",status="201"}"#))

        let status = await server.terminate()
        for writer in writers { await writer.value }
        #expect(status == 0)
        let acknowledged = acknowledgements.all
        #expect(acknowledged.count >= 300)

        // After a restart, every acknowledged event is where its 201 said, with its ID.
        let restarted = try await ServeProcess(data: data)
        var stored: [String: [Int: String]] = [:]
        try await HTTPClient.withConnection(host: "127.0.0.1", port: restarted.port) { connection in
            for writer in 0..<8 {
                var next: Int? = 0
                while let from = next {
                    let page = try await connection.execute(.GET, "/stores/s/streams/w\(writer)?from=\(from)&count=10000")
                    guard page.status == 200 else { break }
                    let json = try #require(try JSONSerialization.jsonObject(with: Data(page.body)) as? [String: Any])
                    for event in json["events"] as? [[String: Any]] ?? [] {
                        stored["w\(writer)", default: [:]][event["version"] as? Int ?? -1] = event["id"] as? String
                    }
                    next = json["next"] as? Int
                }
            }
        }
        let lost = acknowledged.filter { stored[$0.stream]?[$0.version] != $0.id }
        #expect(lost.isEmpty, "\(lost.count) acknowledged events missing or different after the restart")
        #expect(await restarted.terminate() == 0)
    }
}
