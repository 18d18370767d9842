import ArgumentParser
import Foundation
import Ringstore
import RingstoreJSONLines
import RingstoreServer

/// `ringstore delete`: soft-deletes a stream (or, with `--hard`, tombstones it),
/// one named with `--stream` or many, one name a line on stdin (`--stdin`: one
/// store open for all, so deleting 50,000 streams takes seconds, not 50,000
/// process starts). The space goes back at the next `ringstore-admin compact`.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a stream: soft (it reads as not found and can be written again) or --hard (a tombstone: never again).",
        discussion: "Reads stop showing the stream at once; `ringstore-admin compact` reclaims its space. With --stdin, the stream names come one a line from standard input.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var streams: StreamSelection
    @Flag(help: "Tombstone the stream: it can never be written again.") var hard = false
    @Option(parsing: .unconditional, help: "Expected version of the stream: any, no-stream, exists, or a number.") var expectedVersion = "any"

    func run() async throws {
        let expected = try parseExpectedVersion(expectedVersion)
        try await reportingErrors {
            let names = streams.names()
            if let remote = try store.remote() {
                try await remote.withConnection { connection in
                    for name in names {
                        _ = try await connection.call(.DELETE, RemoteStore.streamPath(name) + (hard ? "?hard=true" : ""),
                                                      extraHeaders: [("Expected-Version", RemoteStore.header(expected))], expected: 204)
                    }
                }
            } else {
                try await store.withStore(create: false) { store in
                    for name in names {
                        if hard {
                            try await store.tombstoneStream(name, expectedVersion: expected)
                        } else {
                            try await store.deleteStream(name, expectedVersion: expected)
                        }
                    }
                }
            }
            if streams.stdin { FileHandle.standardError.write(Data("ringstore: \(hard ? "tombstoned" : "deleted") \(names.count) streams\n".utf8)) }
        }
    }
}

/// `ringstore metadata`: prints a stream's metadata, or with any of `--max-count`,
/// `--max-age`, `--truncate-before` replaces it (as the server's PUT does:
/// settings left out are unset). `--stdin` sets the same metadata on every
/// stream named on standard input, one a line.
struct MetadataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "Show or set a stream's metadata: --max-count N, --max-age SECONDS, --truncate-before VERSION.",
        discussion: "Reads honour new metadata at once; `ringstore-admin compact` reclaims the space of the events it hides. Setting replaces the metadata as a whole. With --stdin, the stream names come one a line from standard input.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var streams: StreamSelection
    @Option(help: "Keep only the last N events visible.") var maxCount: UInt64?
    @Option(help: "Hide events older than this many seconds.") var maxAge: Double?
    @Option(help: "Hide events with versions below this one.") var truncateBefore: UInt64?

    func validate() throws {
        if let maxAge, !(maxAge > 0 && maxAge <= 1e14) { throw ValidationError("--max-age must be a positive number of seconds") }
        if streams.stdin && !setting { throw ValidationError("--stdin sets metadata: give --max-count, --max-age or --truncate-before") }
    }

    private var setting: Bool { maxCount != nil || maxAge != nil || truncateBefore != nil }

    func run() async throws {
        try await reportingErrors {
            let names = streams.names()
            if let remote = try store.remote() {
                try await remote.withConnection { connection in
                    for name in names {
                        if setting {
                            let body = "{\"maxCount\":\(maxCount.map(String.init) ?? "null"),\"maxAge\":\(maxAge.map { "\($0)" } ?? "null"),\"truncateBefore\":\(truncateBefore.map(String.init) ?? "null")}"
                            _ = try await connection.call(.PUT, RemoteStore.streamPath(name) + "/metadata", body: Array(body.utf8))
                        } else {
                            print(String(decoding: try await connection.call(.GET, RemoteStore.streamPath(name) + "/metadata"), as: UTF8.self))
                        }
                    }
                }
            } else {
                try await store.withStore(create: false) { store in
                    for name in names {
                        if setting {
                            var metadata = StreamMetadata(maxCount: maxCount, truncateBefore: truncateBefore)
                            if let maxAge { metadata.maxAge = .milliseconds(Int64((maxAge * 1000).rounded(.up))) }
                            try await store.setStreamMetadata(metadata, for: name)
                        } else {
                            // The server's text (metadata version included), so --data and --url print the same.
                            print(StreamMetadataJSON.text(try store.streamMetadata(of: name),
                                                          version: try store.currentVersion(of: "$$" + name)))
                        }
                    }
                }
            }
            if streams.stdin { FileHandle.standardError.write(Data("ringstore: set the metadata of \(names.count) streams\n".utf8)) }
        }
    }
}

/// The streams a command acts on: one `--stream S`, or `--stdin`, the
/// non-empty lines of standard input (one store open for all of them).
struct StreamSelection: ParsableArguments {
    @Option(help: "Stream name.") var stream: String?
    @Flag(help: "Read stream names from standard input, one a line (instead of --stream).") var stdin = false

    func validate() throws {
        guard (stream != nil) != stdin else { throw ValidationError("give either --stream S or --stdin") }
    }

    func names() -> [String] {
        if let stream { return [stream] }
        var names: [String] = []
        while let line = readLine(strippingNewline: true) {
            if !line.isEmpty { names.append(line) }
        }
        return names
    }
}
