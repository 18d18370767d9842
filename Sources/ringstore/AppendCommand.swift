import ArgumentParser
import Foundation
import Ringstore
import RingstoreJSONLines

/// `ringstore append`: appends one event and prints where it landed.
struct AppendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append", abstract: "Append one event to a stream; prints its version and position as JSON.")

    @OptionGroup var store: StoreOptions
    @Option(help: "Stream name.") var stream: String
    @Option(help: "Event type.") var type: String
    @Option(help: "Event data: JSON (default) or, with --binary, text stored as bytes.") var json: String = "{}"
    @Flag(help: "Store the data as opaque bytes, not JSON.") var binary = false
    @Option(parsing: .unconditional, help: "Expected version: any, no-stream, exists, or a number.") var expectedVersion = "any"
    @Option(help: "Event ID (default: a new one).") var id: String?

    func run() async throws {
        let expected = try parseExpectedVersion(expectedVersion)
        let bytes = Array(json.utf8)
        // The check `export` makes before embedding data as JSON, and the JSON `import` accepts.
        if !binary, !JSONLine.isValidJSONValue(bytes) {
            throw ValidationError("--json is not valid JSON (use --binary for other data)")
        }
        var event = EventData(type: type, data: bytes, contentType: binary ? .binary : .json)
        if let id {
            guard let uuid = UUID(uuidString: id) else { throw ValidationError("--id \(id) is not a UUID") }
            event.id = uuid
        }
        try await reportingErrors {
            let result: (firstVersion: UInt64, firstPosition: UInt64)
            if let remote = try store.remote() {
                let answer = try await remote.withConnection { connection in
                    try JSONLine(try await connection.call(.POST, RemoteStore.streamPath(stream), body: RemoteStore.body(of: event).bytes,
                                                           extraHeaders: [("Expected-Version", RemoteStore.header(expected))], expected: 201))
                }
                guard let version = try answer.scalarText("firstVersion").flatMap(UInt64.init),
                      let position = try answer.scalarText("firstPosition").flatMap(UInt64.init) else {
                    throw RingstoreError(.corruptData, "the server's answer has no firstVersion or firstPosition")
                }
                result = (version, position)
            } else {
                let appended = try await store.withStore { try await $0.append(to: stream, expectedVersion: expected, events: [event]) }
                result = (appended.firstVersion, appended.firstPosition)
            }
            print("{\"stream\":\(EventJSON.quoted(stream)),\"id\":\"\(event.id.uuidString.lowercased())\",\"version\":\(result.firstVersion),\"position\":\(result.firstPosition)}")
        }
    }
}

func parseExpectedVersion(_ text: String) throws -> ExpectedVersion {
    switch text {
    case "any": return .any
    case "no-stream": return .noStream
    case "exists": return .streamExists
    default:
        guard let version = UInt64(text) else {
            throw ValidationError("expected version \"\(text)\" must be any, no-stream, exists, or a number from 0 to \(UInt64.max)")
        }
        return .exact(version)
    }
}

/// Throws if any command-line argument is not valid UTF-8. Swift decodes
/// arguments with repair (invalid bytes become U+FFFD), which would silently
/// turn a bad stream name into a different, valid one.
func rejectArgumentsThatAreNotUTF8() throws {
    for i in 1..<Int(CommandLine.argc) {
        guard let pointer = CommandLine.unsafeArgv[i] else { continue }
        let bytes = UnsafeBufferPointer(start: pointer, count: strlen(pointer)).lazy.map { UInt8(bitPattern: $0) }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ValidationError("argument \(i) (\(CommandLine.arguments[i])) is not valid UTF-8")
        }
    }
}
