import ArgumentParser
import Foundation
import Ringstore
import RingstoreJSONLines

/// `ringstore tail`: follows a stream, or every stream, live.
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail", abstract: "Print new events of a stream (or every stream with --all) as JSON Lines until interrupted.")

    @OptionGroup var store: StoreOptions
    @Option(help: "Stream name.") var stream: String?
    @Flag(help: "Follow every stream.") var all = false
    @Flag(help: "Start from the beginning instead of only new events.") var fromStart = false
    @Option(help: "With --all: only streams whose names start with this.") var streamPrefix: String?
    @Option(help: "Stop after this many events.") var count: Int = .max

    func validate() throws {
        guard (stream != nil) != all else { throw ValidationError("give either --stream NAME or --all") }
        guard streamPrefix == nil || all else { throw ValidationError("--stream-prefix goes with --all") }
    }

    func run() async throws {
        try await reportingErrors {
            // Interrupting a tail is how it normally ends: exit status 0.
            try await store.withStore(exitStatusOnSignal: 0) { store in
                let subscription = if let stream {
                    try store.subscribe(to: stream, from: fromStart ? .start : .end)
                } else {
                    try store.subscribeToAll(from: fromStart ? .start : .end, filter: streamPrefix.map { .streamPrefix($0) })
                }
                var printed = 0
                var output = StandardOutput()
                for try await event in subscription {
                    // A live follower prints each event as it comes: one write per event.
                    EventJSON.appendLine(event, to: &output.buffer)
                    try output.flush()
                    printed += 1
                    if printed >= count { break }
                }
            }
        }
    }
}
