import ArgumentParser
import Foundation
import Ringstore
import RingstoreJSONLines

/// `ringstore import`: appends events read as JSON Lines from standard input.
///
/// Each line: `{"stream", "type", "data" (any JSON value) | "dataBase64",
/// "metadata"? | "metadataBase64"?, "id"?, "expectedVersion"?}`; other members
/// (such as `version` and `position` from `export`) are ignored. Lines of one
/// stream are appended in order (consecutive lines of a stream without an
/// expected version go in one append, except with `--acks`); different streams
/// are appended concurrently, up to 64 appends in flight.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Append events read as JSON Lines from standard input.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print {\"id\",\"stream\",\"version\",\"position\"} for each event once it is durable.") var acks = false
    @Flag(help: "Stop at the first malformed line instead of reporting it and going on.") var strict = false

    func run() async throws {
        try await reportingErrors {
            if let remote = try store.remote() {
                try await importLines(into: RemoteImporter(remote: remote, acks: acks))
                return
            }
            try await store.withStore { store in
                try await importLines(into: Importer(store: store, acks: acks))
            }
        }
    }

    /// Reads standard input and hands the events to `importer`, batched per stream.
    private func importLines(into importer: some ImportSink) async throws {
        var lineNumber = 0
        var malformed = 0
        var batch: Importer.Batch?
        for line in InputLines() {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let parsed: Importer.Item
            do {
                parsed = try Importer.Item(line: line, number: lineNumber)
            } catch {
                malformed += 1
                FileHandle.standardError.write(Data("ringstore import: line \(lineNumber): \(error)\n".utf8))
                if strict { throw ExitCode(1) }
                continue
            }
            // With --acks every event needs its own position, which one append per event gives.
            if !acks, var current = batch, current.stream == parsed.stream, parsed.expected == nil, current.items.count < 100 {
                current.items.append(parsed)
                batch = current
            } else {
                if let current = batch { try await importer.submit(current) }
                batch = Importer.Batch(stream: parsed.stream, expected: parsed.expected, items: [parsed])
            }
        }
        if let current = batch { try await importer.submit(current) }
        let (events, failures) = try await importer.finish()
        FileHandle.standardError.write(Data("ringstore import: \(events) events appended, \(malformed) malformed lines, \(failures) appends refused\n".utf8))
        if malformed + failures > 0 { throw ExitCode(1) }
    }
}

/// Where `import` sends its batches: the store itself or a server.
protocol ImportSink: Sendable {
    func submit(_ batch: Importer.Batch) async throws
    /// Waits for every batch; the events appended and the appends refused.
    func finish() async throws -> (events: Int, failures: Int)
}

/// Runs imported appends concurrently across streams, in order within each.
actor Importer: ImportSink {
    struct Item: Sendable {
        var stream: String
        var expected: ExpectedVersion?
        var event: EventData
        var number: Int

        init(line: [UInt8], number: Int) throws {
            let json = try JSONLine(line)
            guard let stream = try json.string("stream") else { throw JSONLine.ParseError(description: "missing \"stream\"") }
            let event = try EventJSON.eventData(from: json)
            self.stream = stream
            self.event = event
            self.number = number
            if let text = try json.scalarText("expectedVersion") {
                do { expected = try parseExpectedVersion(text) } catch { throw JSONLine.ParseError(description: "\(error)") }
            }
        }
    }

    struct Batch: Sendable {
        var stream: String
        var expected: ExpectedVersion?
        var items: [Item]
    }

    let store: EventStore
    let acks: Bool
    private var previous: [String: Task<Void, Never>] = [:]
    private var inFlight: [Task<Void, Never>] = []
    private var events = 0
    private var failures = 0

    init(store: EventStore, acks: Bool) {
        self.store = store
        self.acks = acks
    }

    func submit(_ batch: Batch) async throws {
        if inFlight.count >= 64 {
            await inFlight.removeFirst().value
        }
        let before = previous[batch.stream]
        let task = Task {
            await before?.value  // keep each stream's appends in input order
            await self.run(batch)
        }
        previous[batch.stream] = task
        inFlight.append(task)
    }

    private func run(_ batch: Batch) async {
        do {
            let result = try await store.append(to: batch.stream, expectedVersion: batch.expected ?? .any, events: batch.items.map(\.event))
            events += batch.items.count
            if acks, let item = batch.items.first {  // with --acks, batches hold one event
                Self.printAck(item, version: result.firstVersion, position: result.firstPosition)
            }
        } catch {
            failures += 1
            let message = (error as? RingstoreError)?.message ?? "\(error)"
            FileHandle.standardError.write(Data("ringstore import: line \(batch.items[0].number): \(message)\n".utf8))
        }
    }

    func finish() async throws -> (events: Int, failures: Int) {
        for task in inFlight { await task.value }
        return (events, failures)
    }

    /// `--acks`: `{"id","stream","version","position"}` for an event once it is durable.
    static func printAck(_ item: Item, version: UInt64, position: UInt64) {
        let line = "{\"id\":\"\(item.event.id.uuidString.lowercased())\",\"stream\":\(EventJSON.quoted(item.stream)),\"version\":\(version),\"position\":\(position)}\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}

/// `ringstore export`: prints a store (or one stream) as JSON Lines in global order, as `import` reads them.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Print every event (or one stream's) as JSON Lines in global order, for import.")

    @OptionGroup var store: StoreOptions
    @Option(help: "Only this stream.") var stream: String?

    func run() async throws {
        try await reportingErrors {
            if let remote = try store.remote() {
                return try await remote.printEvents(stream.map(RemoteStore.streamPath) ?? "/all")
            }
            try await store.withStore(create: false) { store in
                let events = stream.map { store.read(stream: $0) } ?? store.readAll()
                var output = StandardOutput()
                for try await event in events {
                    EventJSON.appendLine(event, to: &output.buffer)
                    try output.flushIfFull()
                }
                try output.flush()
            }
        }
    }
}
