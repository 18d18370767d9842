import Foundation
import Testing
@testable import Ringstore

/// The `ringstore` command, run as a user would, through the built binary.
@Suite struct CLITests {
    struct Run {
        var status: Int32
        var output: String
        var errors: String
    }

    static var executable: String {
        CrashTests.tortureExecutable.replacingOccurrences(of: "ringstore-torture", with: "ringstore")
    }

    /// Runs `ringstore` with `arguments` — or, with `shellScript`, runs that script
    /// through `/bin/sh` with the binary in `$RS` (for arguments a Swift string cannot carry).
    func ringstore(_ arguments: [String], environment: [String: String] = [:], input: String? = nil,
                   inputData: Data? = nil, shellScript: String? = nil) throws -> Run {
        let process = Process()
        if let shellScript {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", shellScript]
        } else {
            process.executableURL = URL(fileURLWithPath: Self.executable)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RINGSTORE_") }
        env["RS"] = Self.executable
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let inputFile = (inputData ?? input.map { Data($0.utf8) }).map { bytes -> URL in
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("ringstore-cli-input-\(UUID().uuidString)")
            _ = FileManager.default.createFile(atPath: url.path, contents: bytes)
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

    func json(_ line: Substring) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func appendReadStreamsAndStats() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let data = dir.child("store")
        var run = try ringstore(["append", "--data", data, "--stream", "order 1", "--type", "Placed", "--json", #"{"total":42}"#])
        #expect(run.status == 0, "\(run.errors)")
        #expect(try json(run.output.split(separator: "\n")[0])["version"] as? Int == 0)
        run = try ringstore(["append", "--data", data, "--stream", "order 1", "--type", "Paid", "--json", "true", "--expected-version", "0"])
        #expect(run.status == 0, "\(run.errors)")
        run = try ringstore(["append", "--data", data, "--stream", "raw", "--type", "Blob", "--json", "not json", "--binary"])
        #expect(run.status == 0, "\(run.errors)")

        run = try ringstore(["read", "--data", data, "--stream", "order 1"])
        let lines = run.output.split(separator: "\n")
        #expect(lines.count == 2)
        let first = try json(lines[0])
        #expect(first["type"] as? String == "Placed" && (first["data"] as? [String: Any])?["total"] as? Int == 42)
        #expect(try json(lines[1])["data"] as? Bool == true)
        run = try ringstore(["read", "--data", data, "--all", "--backwards", "--count", "1"])
        let last = try json(run.output.split(separator: "\n")[0])
        #expect(last["stream"] as? String == "raw")
        #expect(last["dataBase64"] as? String == Data("not json".utf8).base64EncodedString())

        run = try ringstore(["streams", "--data", data])
        #expect(run.output == "order 1\t1\nraw\t0\n")
        run = try ringstore(["stats", "--data", data])
        #expect(run.status == 0 && run.output.contains("streams"))
    }

    @Test func mistakesGetClearMessagesAndNonZeroExits() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let data = dir.child("store")
        _ = try ringstore(["append", "--data", data, "--stream", "s", "--type", "T"])

        var run = try ringstore(["append", "--data", data, "--stream", "s", "--type", "T", "--expected-version", "7"])
        #expect(run.status == 3)
        #expect(run.errors.contains("expected version 7, but the stream is at version 0"))
        run = try ringstore(["append", "--data", data, "--stream", "s", "--type", "T", "--expected-version", "maybe"])
        #expect(run.status != 0 && run.errors.contains("must be any, no-stream, exists, or a number"))
        run = try ringstore(["append", "--data", data, "--stream", "s", "--type", "T", "--json", "{oops"])
        #expect(run.status != 0 && run.errors.contains("not valid JSON"))
        run = try ringstore(["append", "--data", data, "--stream", "$system", "--type", "T"])
        #expect(run.status != 0 && run.errors.contains("reserved"))
        run = try ringstore(["read", "--data", data])
        #expect(run.status != 0 && run.errors.contains("--stream NAME or --all"))
        run = try ringstore(["read", "--data", dir.child("missing"), "--all"])
        #expect(run.status != 0 && run.errors.contains("no store at"))
        run = try ringstore(["read", "--data", data, "--stream", "nothing"])
        #expect(run.status != 0 && run.errors.contains("has no events"))
        run = try ringstore(["stats", "--data", data], environment: ["RINGSTORE_JOURNAL_MB": "big"])
        #expect(run.status != 0 && run.errors.contains("RINGSTORE_JOURNAL_MB=big"))
        run = try ringstore(["frobnicate"])
        #expect(run.status != 0)

        // A store open elsewhere: the error names the holder.
        let store = try await EventStore.open(at: data, configuration: .testing())
        run = try ringstore(["read", "--data", data, "--all"])
        #expect(run.status != 0 && run.errors.contains("locked by process \(getpid())"), "\(run.errors)")
        try await store.close()
    }

    @Test func importExportRoundTripAndAcknowledgements() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        var lines: [String] = []
        for i in 0..<300 {
            let stream = "s-\(i % 7)"
            if i % 5 == 0 {
                lines.append(#"{"stream":"\#(stream)","type":"Bin","dataBase64":"\#(Data([UInt8(i % 256), 0, 255]).base64EncodedString())"}"#)
            } else {
                lines.append(#"{"stream":"\#(stream)","type":"Json","data":{"n":\#(i),"f":1.50,"list":[true,null,"é"]},"metadata":{"by":"test"}}"#)
            }
        }
        var run = try ringstore(["import", "--data", dir.child("a"), "--acks"], input: lines.joined(separator: "\n") + "\n")
        #expect(run.status == 0, "\(run.errors)")
        let acks = run.output.split(separator: "\n")
        #expect(acks.count == 300)
        #expect(Set(try acks.map { try json($0)["id"] as! String }).count == 300)

        run = try ringstore(["export", "--data", dir.child("a")])
        let exported = run.output
        #expect(exported.split(separator: "\n").count == 300)
        #expect(exported.contains(#""data":{"n":1,"f":1.50,"list":[true,null,"é"]}"#), "JSON data is kept byte for byte")
        run = try ringstore(["import", "--data", dir.child("b")], input: exported)
        #expect(run.status == 0, "\(run.errors)")
        let copied = try ringstore(["export", "--data", dir.child("b")]).output

        // Same events, same streams and versions, same bytes; only positions, times and the interleaving of streams may differ.
        func content(_ text: String) throws -> [String] {
            try text.split(separator: "\n").map { line in
                var object = try json(line)
                object["position"] = nil
                object["timestamp"] = nil
                return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            }.sorted()
        }
        #expect(try content(exported) == content(copied))
        // Each stream's order is kept.
        for s in 0..<7 {
            #expect(try ringstore(["export", "--data", dir.child("b"), "--stream", "s-\(s)"]).output.split(separator: "\n").map { try json($0)["version"] as! Int } == Array(0..<((300 - s + 6) / 7)))
        }
    }

    @Test func outputThatCannotBeWrittenIsAnError() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let data = dir.child("store")
        _ = try ringstore(["append", "--data", data, "--stream", "s", "--type", "T"])
        for command in ["read --all", "export"] {
            let run = try ringstore([], shellScript: "\"$RS\" \(command) --data '\(data)' > /dev/full")
            #expect(run.status == 1 && run.errors.contains("cannot write to standard output: No space left on device"), "\(command): \(run.errors)")
        }
    }

    @Test func malformedImportLinesAreReportedByLineAndSkipped() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let input = [
            #"{"stream":"a","type":"T","data":{"ok":1}}"#,
            "not json",
            #"{"stream":"a","type":"T"}"#,
            #"{"stream":"a","type":"T","data":{"unclosed":1}"#,
            #"{"stream":"a","type":"T","data":2,"expectedVersion":0}"#,
            #"{"stream":"a","type":"T","data":3,"id":"nope"}"#,
        ].joined(separator: "\n") + "\n"
        var run = try ringstore(["import", "--data", dir.child("a")], input: input)
        #expect(run.status == 1)
        #expect(run.errors.contains("line 2:") && run.errors.contains("line 3: missing \"data\" or \"dataBase64\""))
        #expect(run.errors.contains("line 4:") && run.errors.contains("line 6: \"id\" nope is not a UUID"))
        #expect(run.errors.contains("2 events appended, 4 malformed lines"))
        #expect(try ringstore(["read", "--data", dir.child("a"), "--stream", "a"]).output.split(separator: "\n").count == 2)
        run = try ringstore(["import", "--data", dir.child("strict"), "--strict"], input: input)
        #expect(run.status == 1 && run.errors.contains("line 2:") && !run.errors.contains("line 3:"))
    }

    /// The demo, stopped mid-ingest, closes its store as the other commands do:
    /// what it appended is there and the next open replays nothing.
    @Test func demoStoppedBySIGTERMClosesItsStoreCleanly() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let data = dir.child("store")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        // Far more events than it appends before the signal.
        process.arguments = ["demo", "--dir", data, "--events", "100000000", "--streams", "100", "--event-size", "64"]
        let printed = dir.child("demo.out")
        _ = FileManager.default.createFile(atPath: printed, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: printed))
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // The "store:" line comes after the store is open and the signal handlers are
        // installed; a global index past its header, once appends have been split.
        try await waitUntil("the demo to open its store and split some appends") {
            let size = (try? FileManager.default.attributesOfItem(atPath: data + "/global.index")[.size] as? Int) ?? 0
            return size > 24 && (try? String(contentsOfFile: printed, encoding: .utf8))?.contains("store: ") == true
        }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 128 + SIGTERM)
        let store = try await EventStore.open(at: data, configuration: .testing())
        #expect(store.stats().recoveredEvents == 0, "the demo's store was not closed cleanly")
        #expect(try await store.readAll(maxCount: 1).collect().count == 1)
        try await store.close()
    }

    @Test func tailFollowsAndSIGTERMClosesTheStoreCleanly() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let data = dir.child("store")
        for i in 0..<3 { _ = try ringstore(["append", "--data", data, "--stream", "t", "--type", "T", "--json", "\(i)"]) }
        let run = try ringstore(["tail", "--data", data, "--stream", "t", "--from-start", "--count", "2"])
        #expect(run.status == 0)
        #expect(try run.output.split(separator: "\n").map { try json($0)["data"] as? Int } == [0, 1])

        // A tail runs until interrupted; SIGTERM closes the store cleanly.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["tail", "--data", data, "--all", "--from-start"]
        let printed = dir.child("tail.out")
        _ = FileManager.default.createFile(atPath: printed, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: printed))
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // Having printed the three events, it has the store open and its signal
        // handlers installed, and follows live.
        try await waitUntil("the tail to print the stored events") {
            (try? String(contentsOfFile: printed, encoding: .utf8))?.split(separator: "\n").count == 3
        }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        let store = try await EventStore.open(at: data, configuration: .testing())
        #expect(store.stats().recoveredEvents == 0)
        #expect(try await store.read(stream: "t").collect().count == 3)
        try await store.close()
    }
}
