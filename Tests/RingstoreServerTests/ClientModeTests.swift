import Foundation
import Ringstore
import Testing

/// `ringstore append|read|tail|streams|stats|import|export --url`: against a
/// server, the same output as against the store's folder.
@Suite struct ClientModeTests {
    struct Run: Sendable {
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs the built `ringstore` with `arguments` (off the cooperative pool, see ``offThePool(_:)``).
    func ringstore(_ arguments: [String], input: String? = nil) async throws -> Run {
        try await offThePool { try Self.run(arguments, input: input) }
    }

    static func run(_ arguments: [String], input: String?) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltBinary.ringstore)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RINGSTORE_") }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let inputFile = input.map { text -> URL in
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("ringstore-client-input-\(UUID().uuidString)")
            #expect(FileManager.default.createFile(atPath: url.path, contents: Data(text.utf8)), "the input file")
            return url
        }
        defer { inputFile.map { try? FileManager.default.removeItem(at: $0) } }
        if let inputFile { process.standardInput = try FileHandle(forReadingFrom: inputFile) }
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                   errors: String(decoding: errors, as: UTF8.self))
    }

    @Test func sameOutputAsAgainstTheFolder() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltBinary.ringstore), "build ringstore first")
        let server = try await TestServer.start(token: "tok")
        #expect(try await server.put("/stores/s", headers: [("Authorization", "Bearer tok")]).status == 201)
        let url = "http://127.0.0.1:\(server.port)/stores/s"
        let remote = ["--url", url, "--token", "tok"]

        let appended = try await ringstore(["append"] + remote + ["--stream", "order/1", "--type", "Placed", "--json", #"{"total": 42}"#])
        #expect(appended.status == 0, "\(appended.errors)")
        #expect(appended.output.hasPrefix(#"{"stream":"order/1","id":""#) && appended.output.contains(#""version":0,"position":0}"#))
        let conflict = try await ringstore(["append"] + remote + ["--stream", "order/1", "--type", "T", "--expected-version", "no-stream"])
        #expect(conflict.status == 3 && conflict.errors.contains("expected no stream"))
        let unauthorized = try await ringstore(["streams", "--url", url])
        #expect(unauthorized.status == 1 && unauthorized.errors.contains("token"))
        let noStore = try await ringstore(["streams", "--url", "http://127.0.0.1:\(server.port)/stores/none", "--token", "tok"])
        #expect(noStore.status == 1 && noStore.errors.contains("no store named"))

        let lines = [
            #"{"stream":"order/1","type":"Paid","data":{"by":"card"},"metadata":{"who":"x"}}"#,
            #"{"stream":"blob","type":"Raw","dataBase64":"AAEC","id":"6f1e2d3c-0000-4000-8000-0000000000aa"}"#,
            #"{"stream":"order/2","type":"Placed","data":[1, 2.50, "three"],"expectedVersion":"no-stream"}"#,
            "not json",
            #"{"stream":"order/2","type":"Shipped","data":null}"#,
        ]
        let imported = try await ringstore(["import"] + remote + ["--acks"], input: lines.joined(separator: "\n") + "\n")
        #expect(imported.status == 1 && imported.errors.contains("line 4"), "\(imported.errors)")
        #expect(imported.output.split(separator: "\n").count == 4)
        #expect(imported.output.contains(#"{"id":"6f1e2d3c-0000-4000-8000-0000000000aa","stream":"blob","version":0,"#))

        let tail = try await ringstore(["tail"] + remote + ["--stream", "order/1", "--from-start", "--count", "2"])
        #expect(tail.status == 0)

        let commands: [[String]] = [
            ["read", "--stream", "order/1"], ["read", "--all"], ["read", "--all", "--backwards", "--count", "3"],
            ["read", "--stream", "order/2", "--from", "1"], ["streams"], ["export"], ["export", "--stream", "blob"],
        ]
        var remoteOutputs: [String] = []
        for command in commands {
            let run = try await ringstore(command + remote)
            #expect(run.status == 0, "\(command): \(run.errors)")
            remoteOutputs.append(run.output)
        }
        let remoteStats = try await ringstore(["stats"] + remote)
        #expect(remoteStats.status == 0 && remoteStats.output.contains("journal capacity"))
        #expect(tail.output == remoteOutputs[0])
        try await server.stop()

        let folder = server.directory.path + "/stores/s"
        for (command, remoteOutput) in zip(commands, remoteOutputs) {
            let local = try await ringstore(command + ["--data", folder])
            #expect(local.status == 0)
            #expect(local.output == remoteOutput, "\(command)")
        }
        let localStats = try await ringstore(["stats", "--data", folder])
        #expect(localStats.output.split(separator: "\n").map { $0.prefix(24) } == remoteStats.output.split(separator: "\n").map { $0.prefix(24) })
        #expect(remoteOutputs[1].split(separator: "\n").count == 5)
    }
}
