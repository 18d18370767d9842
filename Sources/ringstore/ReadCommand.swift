import ArgumentParser
import Foundation
import Ringstore
import RingstoreJSONLines

/// `ringstore read`: prints a stream's events (or `$all`) as JSON Lines.
struct ReadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read", abstract: "Print a stream's events, or every event with --all, as JSON Lines.")

    @OptionGroup var store: StoreOptions
    @Option(help: "Stream name.") var stream: String?
    @Flag(help: "Read every stream in global order.") var all = false
    @Option(help: "Start at this version (or, with --all, position); default the start (or the end with --backwards).") var from: UInt64?
    @Flag(help: "Read backwards.") var backwards = false
    @Option(help: "At most this many events.") var count: Int = .max

    func validate() throws {
        guard (stream != nil) != all else { throw ValidationError("give either --stream NAME or --all") }
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
    }

    func run() async throws {
        let direction: ReadDirection = backwards ? .backwards : .forwards
        try await reportingErrors {
            if let remote = try store.remote() {
                return try await remote.printEvents(stream.map(RemoteStore.streamPath) ?? "/all",
                                                    query: backwards ? [("direction", "backwards")] : [], from: from, limit: count)
            }
            try await store.withStore(create: false) { store in
                let events: EventSequence
                if let stream {
                    events = store.read(stream: stream, from: from.map { .version($0) } ?? (backwards ? .end : .start),
                                        direction: direction, maxCount: count)
                } else {
                    events = store.readAll(from: from.map { .position($0) } ?? (backwards ? .end : .start),
                                           direction: direction, maxCount: count)
                }
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
