import Foundation
import Ringstore
import RingstoreHTTPClient
import Testing

/// `ringstore delete --url` and `ringstore metadata --url` through the command
/// line against a `ringstore serve` process: the same effects, answers, exit
/// statuses and output as against the store's folder.
@Suite struct ClientDeleteMetadataTests {
    typealias Run = ClientModeTests.Run

    /// Runs the command; event IDs and timestamps (new for every append) are masked in its output.
    func ringstore(_ arguments: [String], input: String? = nil) async throws -> Run {
        var run = try await offThePool { try ClientModeTests.run(arguments, input: input) }
        run.output = run.output.replacing(/"id":"[0-9a-f-]{36}"/, with: "\"id\":\"ID\"")
            .replacing(/"timestamp":"[^"]*"/, with: "\"timestamp\":\"T\"")
        return run
    }

    /// Appends `count` events to each of `streams` through `target` (`--url …` or `--data …`).
    func fill(_ streams: [String], count: Int, _ target: [String]) async throws {
        for stream in streams {
            for i in 0..<count {
                let run = try await ringstore(["append"] + target + ["--stream", stream, "--type", "T", "--json", "{\"i\":\(i)}"])
                #expect(run.status == 0, "append to \(stream): \(run.errors)")
            }
        }
    }

    /// What the command line shows of `streams` afterwards: each stream's metadata and events, and every status.
    func observe(_ streams: [String], _ target: [String]) async throws -> [String] {
        var seen: [String] = []
        for stream in streams {
            let metadata = try await ringstore(["metadata"] + target + ["--stream", stream])
            seen.append("metadata \(stream): \(metadata.status) \(metadata.output)")
            let read = try await ringstore(["read"] + target + ["--stream", stream])
            seen.append("read \(stream): \(read.status) \(read.output)")
        }
        let all = try await ringstore(["read"] + target + ["--all"])
        seen.append("all: \(all.status) \(all.output.split(separator: "\n").filter { !$0.contains("\"stream\":\"$$") }.count) events")
        return seen
    }

    /// Runs the same script of deletes and metadata changes through `target`;
    /// returns each step's exit status and output.
    func script(_ target: [String]) async throws -> [String] {
        var steps: [String] = []
        func step(_ arguments: [String], input: String? = nil) async throws {
            let run = try await ringstore(arguments + target, input: input)
            steps.append("\(arguments.joined(separator: " ")): \(run.status) \(run.output)")
        }
        try await step(["metadata", "--stream", "order/1", "--max-count", "2"])
        try await step(["metadata", "--stream", "ü b", "--truncate-before", "3"])
        try await step(["metadata", "--stream", "aged", "--max-age", "3600"])
        try await step(["metadata", "--stream", "half", "--max-age", "0.5"])
        try await step(["metadata", "--stdin", "--max-count", "1"], input: "many-1\nmany-2\n\n")
        try await step(["delete", "--stream", "soft"])
        try await step(["delete", "--stream", "hard", "--hard"])
        try await step(["delete", "--stdin"], input: "gone-1\ngone-2\n")
        // A conflict exits with status 3 and changes nothing.
        try await step(["delete", "--stream", "kept", "--expected-version", "7"])
        try await step(["delete", "--stream", "kept", "--expected-version", "no-stream"])
        // A tombstoned stream can be neither written nor deleted again.
        try await step(["append", "--stream", "hard", "--type", "T", "--json", "{}"])
        try await step(["delete", "--stream", "hard"])
        // A soft-deleted stream can be written again, from the next version.
        try await step(["append", "--stream", "soft", "--type", "T", "--json", "{\"again\":true}"])
        return steps
    }

    static let streams = ["order/1", "ü b", "aged", "half", "many-1", "many-2", "soft", "hard", "gone-1", "gone-2", "kept"]

    @Test func deleteAndMetadataAgainstAServerMatchTheFolder() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltBinary.ringstore), "build ringstore first")
        let directory = TemporaryDirectory()

        // Against the folder.
        let folder = directory.path + "/local"
        let local = ["--data", folder]
        let created = try await ringstore(["append", "--data", folder, "--stream", "first", "--type", "T", "--json", "{}"])
        #expect(created.status == 0, "\(created.errors)")
        try await fill(Self.streams, count: 4, local)
        let localSteps = try await script(local)
        let localSeen = try await observe(Self.streams, local)

        // Against a server process.
        let server = try await ServerProcessTests.ServeProcess(data: directory.path + "/served")
        let made = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { try await $0.execute(.PUT, "/stores/s") }
        #expect(made.status == 201)
        let remote = ["--url", "http://127.0.0.1:\(server.port)/stores/s"]
        let first = try await ringstore(["append"] + remote + ["--stream", "first", "--type", "T", "--json", "{}"])
        #expect(first.status == 0, "\(first.errors)")
        try await fill(Self.streams, count: 4, remote)
        let remoteSteps = try await script(remote)
        let remoteSeen = try await observe(Self.streams, remote)
        #expect(await server.terminate() == 0)

        #expect(remoteSteps == localSteps)
        #expect(remoteSeen == localSeen)
        for (remoteLine, localLine) in zip(remoteSteps + remoteSeen, localSteps + localSeen) where remoteLine != localLine {
            Issue.record("--url: \(remoteLine)\n--data: \(localLine)")
        }
        // What the script must have done (the same through both).
        #expect(localSteps[8].hasPrefix("delete --stream kept --expected-version 7: 3"), "\(localSteps[8])")
        #expect(localSteps[10].contains(": 1 ") || localSteps[10].contains(": 4 "), "\(localSteps[10])")
        #expect(localSeen.contains { $0.hasPrefix("metadata order/1: 0 {\"maxCount\":2,") }, "\(localSeen)")
        #expect(localSeen.contains { $0.hasPrefix("metadata aged: 0 {\"maxCount\":null,\"maxAge\":3600,") }, "\(localSeen)")
        #expect(localSeen.contains { $0.hasPrefix("metadata kept: 0 {\"maxCount\":null,\"maxAge\":null,\"truncateBefore\":null,\"softDeleted\":false,\"metadataVersion\":null}") }, "\(localSeen)")
        #expect(localSeen.contains { $0.hasPrefix("metadata half: 0 {\"maxCount\":null,\"maxAge\":0.5,") }, "\(localSeen)")
        let orderRead = localSeen.first { $0.hasPrefix("read order/1: 0 ") } ?? ""
        #expect(orderRead.split(separator: "\n").count == 2, "\(orderRead)")

    }
}
