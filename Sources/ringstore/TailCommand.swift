import ArgumentParser
import Foundation
import Ringstore
import RingstoreHTTPClient
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
            if let remote = try store.remote() {
                try await followRemote(remote)
                return
            }
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

    /// Follows a server's live tail (Server-Sent Events), printing each event's JSON as it came. A
    /// `too-slow` end reconnects with `Last-Event-ID`, so nothing is missed; the server shutting down ends it.
    private func followRemote(_ remote: RemoteStore) async throws {
        let signals = InterruptExit()
        defer { signals.cancel() }
        var lastID: String?
        var printed = 0
        var output = StandardOutput()
        var reconnect = true
        while reconnect {
            reconnect = false
            try await remote.withConnection { connection in
                let path = stream.map { RemoteStore.streamPath($0) + "/subscribe" } ?? "/all/subscribe"
                var parameters = lastID == nil ? [("from", fromStart ? "start" : "end")] : []
                if let streamPrefix { parameters.append(("streamPrefix", streamPrefix)) }
                let headers = connection.headers + (lastID.map { [("Last-Event-ID", $0)] } ?? [])
                let head = try await connection.http.start(.GET, remote.storePath + path + RemoteStore.query(parameters), headers: headers)
                guard head.status.code == 200 else {
                    var body: [UInt8] = []
                    while let chunk = try await connection.http.nextChunk() { body += chunk }
                    throw RemoteStore.error(from: HTTPClientResponse(status: Int(head.status.code), headers: head.headers, body: body))
                }
                var events = ServerSentEvents(connection: connection.http)
                while printed < count, let event = try await events.next() {
                    switch event.name {
                    case nil:
                        output.buffer.append(raw: Array(event.data.utf8))
                        output.buffer.append("\n")
                        try output.flush()
                        lastID = event.id
                        printed += 1
                    case "too-slow":
                        reconnect = true
                        return
                    case "error":
                        let json = try? JSONLine(Array(event.data.utf8))
                        throw RingstoreError(.invalidArgument, ((try? json?.string("message")) ?? nil) ?? event.data)
                    default:  // shutdown, end: the server went away
                        FileHandle.standardError.write(Data("ringstore tail: the server ended the tail (\(event.name ?? ""))\n".utf8))
                        return
                    }
                }
            }
        }
    }
}

/// SIGINT and SIGTERM end a remote tail with status 0, as they end a local one.
final class InterruptExit: @unchecked Sendable {
    // @unchecked Sendable: the sources are set once in init and only cancelled afterwards.
    private let sources: [any DispatchSourceSignal]

    init() {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { exit(0) }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
