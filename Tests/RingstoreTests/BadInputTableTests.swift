import Foundation
import Testing
@testable import Ringstore

/// One bad input and what its rejection must say.
struct BadInput: Sendable, CustomTestStringConvertible {
    var label: String
    var stream: String
    var expectedCode: RingstoreError.Code
    /// Words the message must contain.
    var says: String

    var testDescription: String { label }
}

/// The same table of bad input at the three boundaries: the library API, `ringstore
/// append` and `ringstore import`. Each must be refused with an error naming what
/// was wrong, and nothing may be stored. Bad opens (configuration, folder, a second
/// open of one store) are here too.
///
/// Not in the API table: invalid UTF-8 (a Swift `String` cannot hold it) and
/// negative versions (`ExpectedVersion.exact` takes a `UInt64`); both are in the
/// CLI and import tables, where they can occur. `../x` is a valid name, not bad
/// input: names never become paths (files are named by hash), which a test checks.
@Suite struct BadInputTableTests {
    static let badStreamNames: [BadInput] = [
        BadInput(label: "empty", stream: "", expectedCode: .invalidStreamName, says: "must not be empty"),
        BadInput(label: "1025 bytes", stream: String(repeating: "n", count: 1025), expectedCode: .invalidStreamName, says: "1025 bytes"),
        BadInput(label: "1025 bytes of multi-byte UTF-8", stream: String(repeating: "é", count: 512) + "n", expectedCode: .invalidStreamName, says: "1025 bytes"),
        BadInput(label: "NUL", stream: "a\u{0}b", expectedCode: .invalidStreamName, says: "NUL"),
        BadInput(label: "$system", stream: "$system", expectedCode: .invalidStreamName, says: "reserved"),
    ]

    // MARK: - API

    @Test(arguments: badStreamNames)
    func apiRejectsBadStreamNames(_ bad: BadInput) async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let error = await ringstoreError { try await store.append(to: bad.stream, events: [event("x")]) }
        #expect(error?.code == bad.expectedCode)
        #expect(error?.message.contains(bad.says) == true, "\(String(describing: error?.message))")
        if bad.stream.utf8.first != UInt8(ascii: "$") {  // reading `$…` is allowed (system streams)
            let readError = await ringstoreError { _ = try await store.read(stream: bad.stream).collect() }
            #expect(readError?.code == bad.expectedCode)
            #expect(throws: RingstoreError.self) { _ = try store.currentVersion(of: bad.stream) }
            #expect(throws: RingstoreError.self) { _ = try store.subscribe(to: bad.stream) }
        }
        #expect(try await store.readAll().collect().isEmpty, "nothing stored")
        try await store.close()
    }

    @Test func apiAcceptsNamesAtTheLimitsAndKeepsPathLikeNamesInsideTheStore() async throws {
        // The store one level down in a fresh folder, so that anything created beside
        // it shows, whatever else the machine's temporary folder holds.
        let dir = TemporaryDirectory()
        let root = dir.path + "/store"
        let store = try await EventStore.open(at: root, configuration: .testing())
        let names = [String(repeating: "n", count: 1024), String(repeating: "é", count: 512), "../x", "../../etc/passwd", "/abs", "a/b", "é", "x$"]
        for name in names {
            try await store.append(to: name, expectedVersion: .noStream, events: [event(name)])
        }
        for name in names {
            #expect(try await store.read(stream: name).collect().map(text) == ["{\"v\":\"\(name)\"}"])
        }
        try await store.close()
        // Nothing was created outside the store's folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["store"])
        #expect(!FileManager.default.fileExists(atPath: root + "/../x"))
        let reopened = try await EventStore.open(at: root, configuration: .testing())
        #expect(try reopened.streamNames().sorted() == names.sorted())
        try await reopened.close()
    }

    @Test func apiRejectsBadEventsAndVersions() async throws {
        let dir = TemporaryDirectory()
        var config = Configuration.testing()
        config.maxEventSize = 1000
        let store = try await EventStore.open(at: dir.path, configuration: config)
        let limit = config.maxEventSize

        // Sizes: data + metadata at the limit is fine; one byte over is not, however it is split.
        try await store.append(to: "sizes", events: [EventData(type: "T", data: Array(repeating: 1, count: limit), contentType: .binary)])
        try await store.append(to: "sizes", events: [EventData(type: "T", data: Array(repeating: 1, count: limit - 10),
                                                              metadata: Array(repeating: 2, count: 10), contentType: .binary)])
        for (data, metadata) in [(limit + 1, 0), (limit - 10, 11), (0, limit + 1)] {
            let error = await ringstoreError {
                try await store.append(to: "sizes", events: [EventData(type: "T", data: Array(repeating: 1, count: data),
                                                                      metadata: Array(repeating: 2, count: metadata), contentType: .binary)])
            }
            #expect(error?.code == .eventTooLarge)
            #expect(error?.message.contains("\(limit + 1) bytes") == true && error?.message.contains("maxEventSize") == true,
                    "\(String(describing: error?.message))")
        }
        let tooMany = (0..<600).map { _ in EventData(type: "T", data: Array(repeating: 1, count: 900), contentType: .binary) }
        #expect(await ringstoreError { try await store.append(to: "sizes", events: tooMany) }?.code == .appendTooLarge)
        #expect(await ringstoreError { try await store.append(to: "sizes", events: []) }?.code == .invalidArgument)

        // Event types.
        for (type, says) in [("", "1-255 bytes"), (String(repeating: "t", count: 256), "256 bytes"), ("a\u{0}b", "NUL")] {
            let error = await ringstoreError { try await store.append(to: "types", events: [EventData(type: type, json: "1")]) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains(says) == true, "\(String(describing: error?.message))")
        }
        try await store.append(to: "types", events: [EventData(type: String(repeating: "t", count: 255), json: "1")])

        // Versions: huge ones are plain mismatches that report the current version.
        let huge = await ringstoreError { try await store.append(to: "sizes", expectedVersion: .exact(.max), events: [event("v")]) }
        #expect(huge?.code == .wrongExpectedVersion)
        #expect(huge?.currentVersion == 1)
        #expect(huge?.message.contains("expected version \(UInt64.max)") == true, "\(String(describing: huge?.message))")
        let missing = await ringstoreError { try await store.append(to: "nowhere", expectedVersion: .exact(.max), events: [event("v")]) }
        #expect(missing?.code == .wrongExpectedVersion && missing?.currentVersion == nil)
        #expect(try await store.read(stream: "sizes", from: .version(.max)).collect().isEmpty)

        // Metadata is opaque bytes at the API: any bytes are stored and returned as they were.
        let odd: [UInt8] = [0xFF, 0x00, 0xFE, UInt8(ascii: "{")]
        try await store.append(to: "meta", events: [EventData(type: "T", data: [1], metadata: odd, contentType: .binary)])
        #expect(try await store.read(stream: "meta").collect().first?.metadata == odd)
        #expect(try await store.read(stream: "sizes").collect().count == 2, "nothing of the refused appends was stored")
        try await store.close()
    }

    // MARK: - Opening

    @Test func badConfigurationIsRejected() async throws {
        let dir = TemporaryDirectory()
        var config = Configuration()
        config.journalCapacity = 1000
        let error = await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: config) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("journalCapacity") == true)
    }

    @Test func missingParentFolderIsReported() async throws {
        let dir = TemporaryDirectory()
        let error = await ringstoreError { _ = try await EventStore.open(at: dir.child("no/such/place"), configuration: .testing()) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("does not exist") == true)
    }

    @Test func secondOpenOfTheSameStoreIsRefused() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let error = await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing()) }
        #expect(error?.code == .storeLocked)
        #expect(error?.message.contains("this process") == true)
        try await store.close()
        let again = try await EventStore.open(at: dir.path, configuration: .testing())
        try await again.close()
    }

    // MARK: - CLI

    /// Runs `ringstore` through the shell, so that arguments can carry bytes a Swift
    /// `String` cannot (invalid UTF-8).
    func shell(_ script: String, environment: [String: String] = [:]) throws -> CLITests.Run {
        try CLITests().ringstore([], environment: environment, shellScript: script)
    }

    @Test func cliAppendRejectsEachBadInputWithAClearMessage() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let data = dir.child("store")
        let cli = CLITests()
        let env = ["RINGSTORE_MAX_EVENT_BYTES": "64", "RINGSTORE_JOURNAL_MB": "1"]
        func append(_ arguments: [String]) throws -> CLITests.Run {
            try cli.ringstore(["append", "--data", data] + arguments, environment: env)
        }
        var cases: [(label: String, run: CLITests.Run, status: Int32, says: String)] = []
        for bad in Self.badStreamNames where !bad.stream.utf8.contains(0) {  // argv cannot carry NUL
            cases.append((bad.label, try append(["--stream", bad.stream, "--type", "T"]), 1, bad.says))
        }
        cases.append(("invalid UTF-8 stream", try shell(#"exec "$RS" append --data "$DATA" --stream "$(printf 'a\377b')" --type T"#,
                                                        environment: env.merging(["DATA": data]) { $1 }), 64, "not valid UTF-8"))
        cases.append(("event over the limit", try append(["--stream", "s", "--type", "T", "--json", "\"" + String(repeating: "x", count: 63) + "\""]),
                      1, "limit (maxEventSize) is 64"))
        cases.append(("negative version", try append(["--stream", "s", "--type", "T", "--expected-version", "-1"]), 64, "a number from 0 to"))
        cases.append(("version above UInt64", try append(["--stream", "s", "--type", "T", "--expected-version", "18446744073709551616"]),
                      64, "a number from 0 to"))
        cases.append(("fractional version", try append(["--stream", "s", "--type", "T", "--expected-version", "1.5"]), 64, "a number from 0 to"))
        cases.append(("huge version", try append(["--stream", "s", "--type", "T", "--expected-version", "18446744073709551615"]),
                      3, "expected version 18446744073709551615"))
        cases.append(("empty type", try append(["--stream", "s", "--type", ""]), 1, "event type must be 1-255 bytes"))
        cases.append(("invalid JSON data", try append(["--stream", "s", "--type", "T", "--json", "{nope"]), 64, "--json is not valid JSON"))
        cases.append(("bad event ID", try append(["--stream", "s", "--type", "T", "--id", "xyz"]), 64, "is not a UUID"))
        for c in cases {
            #expect(c.run.status == c.status, "\(c.label): exit \(c.run.status), stderr: \(c.run.errors)")
            #expect(c.run.errors.contains(c.says), "\(c.label): stderr: \(c.run.errors)")
        }
        // At the limits: accepted.
        let ok = try append(["--stream", "../x", "--type", String(repeating: "t", count: 255), "--json", "\"" + String(repeating: "x", count: 62) + "\""])
        #expect(ok.status == 0, "\(ok.errors)")
        let streams = try cli.ringstore(["streams", "--data", data], environment: env)
        #expect(streams.output == "../x\t0\n", "only the good append was stored")
    }

    // MARK: - Import

    @Test func importRejectsEachBadLineByNumber() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable), "build ringstore first")
        let dir = TemporaryDirectory()
        let data = dir.child("store")
        let env = ["RINGSTORE_MAX_EVENT_BYTES": "64", "RINGSTORE_JOURNAL_MB": "1"]
        func line(_ stream: String, _ rest: String = #""data":1"#) -> String {
            #"{"stream":"\#(stream)","type":"T",\#(rest)}"#
        }
        let table: [(label: String, line: String, says: String)] = [
            ("empty stream", line(""), "must not be empty"),
            ("1025-byte stream", line(String(repeating: "n", count: 1025)), "1025 bytes"),
            ("NUL in stream", line(#"a\u0000b"#), "NUL"),
            ("invalid UTF-8 stream", line("a\u{FFFF}b"), "not valid UTF-8"),  // \u{FFFF} is replaced by a raw 0xFF byte below
            ("lone surrogate", line(#"\ud800"#), "bad string"),
            ("$system", line("$system"), "reserved"),
            ("event over the limit", line("s", #""data":""# + String(repeating: "x", count: 63) + "\""), "limit (maxEventSize) is 64"),
            ("negative version", line("s", #""data":1,"expectedVersion":-1"#), "a number from 0 to"),
            ("fractional version", line("s", #""data":1,"expectedVersion":1.5"#), "a number from 0 to"),
            ("version above UInt64", line("s", #""data":1,"expectedVersion":18446744073709551616"#), "a number from 0 to"),
            ("huge version", line("s", #""data":1,"expectedVersion":18446744073709551615"#), "expected version 18446744073709551615"),
            ("malformed metadata", line("s", #""data":1,"metadata":{"a":}"#), "missing value"),
            ("metadata not base64", line("s", ##""data":1,"metadataBase64":"!!""##), "not base64"),
            ("metadataBase64 not a string", line("s", #""data":1,"metadataBase64":7"#), "must be a string"),
            ("data not JSON", line("s", #""data":nan"#), "bad value"),
            ("bad string escape", line("s", #""data":"a\qb""#), "bad escape"),
            ("missing type", #"{"stream":"s","data":1}"#, "missing \"type\""),
            ("not an object", "[1,2]", "expected '{'"),
            ("trailing text", line("s") + " x", "unexpected text"),
            ("bad ID", line("s", #""data":1,"id":"xyz""#), "is not a UUID"),
        ]
        var input = Data()
        for entry in table {
            var bytes = Data(entry.line.utf8)
            if entry.label == "invalid UTF-8 stream" {
                bytes = Data(entry.line.replacingOccurrences(of: "\u{FFFF}", with: "#").utf8)
                bytes[bytes.firstIndex(of: UInt8(ascii: "#"))!] = 0xFF
            }
            input += bytes + Data("\n".utf8)
        }
        input += Data((line("../x") + "\n").utf8)  // a good line last: import goes on after bad ones
        let run = try CLITests().ringstore(["import", "--data", data], environment: env, inputData: input)
        #expect(run.status == 1)
        let errorLines = run.errors.split(separator: "\n")
        for (number, entry) in table.enumerated() {
            let reported = errorLines.first { $0.hasPrefix("ringstore import: line \(number + 1): ") }
            #expect(reported?.contains(entry.says) == true, "\(entry.label): \(String(describing: reported))")
        }
        #expect(run.errors.contains("1 events appended"), "\(run.errors)")
        let streams = try CLITests().ringstore(["streams", "--data", data], environment: env)
        #expect(streams.output == "../x\t0\n", "only the good line was stored")

        // --strict stops at the first malformed line.
        let strict = try CLITests().ringstore(["import", "--data", dir.child("strict"), "--strict"], environment: env,
                                              inputData: Data(("[1,2]\n" + line("after") + "\n").utf8))
        #expect(strict.status == 1)
        #expect(strict.errors.contains("line 1: "))
        #expect(!strict.errors.contains("events appended"))
    }
}
