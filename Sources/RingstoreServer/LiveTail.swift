import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Ringstore
import RingstoreJSONLines
import ServiceLifecycle
import Synchronization

/// Live tails over Server-Sent Events: `/stores/{store}/streams/{stream}/subscribe`
/// and `/stores/{store}/all/subscribe`.
///
/// Each is one library subscription (catch-up from `from`, then live, no gap or
/// duplicate at the switch), so the server holds no queue of its own: a reader
/// task pulls from the subscription into a channel that holds one event at a
/// time, and the response writer takes them out as the connection accepts
/// them. Every event goes out as `id: <version or position>` and `data: <the
/// event's JSON>`; a client that reconnects with `Last-Event-ID` resumes right
/// after the event it last received.
///
/// A tail ends with a final named event:
/// - `too-slow` when, having caught up once, it falls more than the lag bound
///   behind the newest acknowledged event (the client may reconnect with
///   `Last-Event-ID` and catch up again);
/// - `shutdown` when the server stops;
/// - `error` (`{"code","message"}`) when the subscription fails, such as a
///   tombstoned stream.
/// A connection whose client reads nothing for the write timeout is closed
/// (no final event can reach it). A comment line every 15 s keeps proxies from
/// timing the connection out and finds clients that went away.
extension RingstoreAPI {
    func subscribeStream(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        let from: StreamRevision
        if let last = try Self.lastEventID(request) {
            guard last < UInt64.max else { throw APIError.badRequest("Last-Event-ID \(last) is past the last possible version") }
            from = .version(last + 1)
        } else {
            from = try Self.liveStart(request).map { $0.map { .version($0) } ?? .end } ?? .start
        }
        let subscription = try await calling {
            _ = try store.streamMetadata(of: stream)  // a tombstoned stream: 410 now, not an error event later
            return try store.subscribe(to: stream, from: from)
        }
        return live(subscription, store: store, context: context, id: { $0.version }, after: nil, accept: nil, startsAtEnd: from == .end)
    }

    func subscribeAll(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let streamPrefix = try Self.text(request, "streamPrefix")
        let eventType = try Self.text(request, "eventType")
        let lastSeen = try Self.lastEventID(request)
        let from: LogPosition
        if let lastSeen {
            from = .position(lastSeen)  // that event itself is skipped below
        } else {
            from = try Self.liveStart(request).map { $0.map { .position($0) } ?? .end } ?? .start
        }
        let filter: SubscriptionFilter? = streamPrefix.map { .streamPrefix($0) } ?? eventType.map { .eventTypes([$0]) }
        let subscription = try await calling { try store.subscribeToAll(from: from, filter: filter) }
        // The library takes one filter; with both, the event type is checked here.
        var accept: (@Sendable (RecordedEvent) -> Bool)?
        if streamPrefix != nil, let eventType { accept = { event in event.type == eventType } }
        return live(subscription, store: store, context: context, id: { $0.position }, after: lastSeen, accept: accept, startsAtEnd: from == .end)
    }

    /// `Last-Event-ID`, if sent: the id of the last event the client received.
    static func lastEventID(_ request: Request) throws(APIError) -> UInt64? {
        guard let text = request.headers[.lastEventID] else { return nil }
        guard let value = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
            throw .badRequest("Last-Event-ID \"\(text)\" must be the id of an event received (a number)")
        }
        return value
    }

    /// `from`: nil if absent (the start), `.some(nil)` for `end` (only new events), or a number.
    static func liveStart(_ request: Request) throws(APIError) -> UInt64?? {
        switch request.uri.queryParameters["from"] {
        case nil, "start": return nil
        case "end": return .some(nil)
        default:
            guard let number = try number(request, "from") else { return nil }
            return .some(number)
        }
    }

    private enum LiveItem: Sendable {
        case event(RecordedEvent)
        case heartbeat
        case ended((any Error)?)
    }

    private func live(_ subscription: Subscription, store: EventStore, context: ServerContext, id: @escaping @Sendable (RecordedEvent) -> UInt64,
                      after: UInt64?, accept: (@Sendable (RecordedEvent) -> Bool)?, startsAtEnd: Bool) -> Response {
        let maxLag = configuration.liveMaxLagBytes ?? store.configuration.journalCapacity
        let writeTimeout = configuration.liveWriteTimeout
        let heartbeat = min(Duration.seconds(15), writeTimeout / 2)
        let channel = context.channel
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let items = AsyncChannel<LiveItem>()
            let flags = LiveFlags()
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await event in subscription {
                                if let after, event.position <= after { continue }
                                if let accept, !accept(event) { continue }
                                await items.send(.event(event))
                                if Task.isCancelled { return }
                            }
                            await items.send(.ended(nil))
                        } catch {
                            await items.send(.ended(error))
                        }
                    }
                    group.addTask {
                        let clock = ContinuousClock()
                        var lastBeat = clock.now
                        while !Task.isCancelled {
                            try await Task.sleep(for: min(heartbeat, .milliseconds(250)))
                            let started = flags.writeStarted.load(ordering: .relaxed)
                            if started != 0, DispatchTime.now().uptimeNanoseconds - started > UInt64(writeTimeout.components.seconds) * 1_000_000_000 + UInt64(writeTimeout.components.attoseconds / 1_000_000_000) {
                                channel.close(promise: nil)  // the client reads nothing: its blocked write fails
                                return
                            }
                            if clock.now - lastBeat >= heartbeat {
                                lastBeat = clock.now
                                await items.send(.heartbeat)
                            }
                        }
                    }
                    func send(_ text: [UInt8]) async throws {
                        flags.writeStarted.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
                        try await writer.write(ByteBuffer(bytes: text))
                        flags.writeStarted.store(0, ordering: .relaxed)
                    }
                    try await send(Array(": ringstore live tail\nretry: 1000\n\n".utf8))
                    // A tail from the end starts caught up; one from further back once it comes within the bound.
                    var caughtUp = startsAtEnd
                    var sinceCheck = 0
                    var buffer = JSONByteBuffer(capacity: 1024)
                    loop: for await item in items {
                        switch item {
                        case .event(let event):
                            buffer.removeAll()
                            buffer.append("id: ")
                            buffer.append(decimal: id(event))
                            buffer.append("\ndata: ")
                            EventJSON.appendLine(event, to: &buffer)
                            buffer.append("\n")
                            try await send(buffer.bytes)
                            sinceCheck += 1
                            if sinceCheck >= 64 || !caughtUp {
                                sinceCheck = 0
                                let head = store.stats().writtenPosition
                                let lag = head > event.position ? head - event.position : 0
                                if lag <= maxLag {
                                    caughtUp = true
                                } else if caughtUp {
                                    try await send(Self.finalEvent("too-slow", code: "tooSlow",
                                        message: "this tail fell \(lag) bytes behind the newest event (at most \(maxLag) once caught up); reconnect with Last-Event-ID to resume"))
                                    break loop
                                }
                            }
                        case .heartbeat:
                            try await send(Array(": keep-alive\n\n".utf8))
                        case .ended(let error):
                            if flags.stopping.load(ordering: .relaxed) { break loop }
                            if let error = error as? RingstoreError {
                                let api = APIError(error, retryAfter: retryAfter)
                                try await send(Self.finalEvent("error", code: api.code, message: api.message))
                            } else if let error, !(error is CancellationError) {
                                try await send(Self.finalEvent("error", code: "internal", message: "\(error)"))
                            } else {
                                try await send(Self.finalEvent("end", code: "storeClosed", message: "the store closed"))
                            }
                            break loop
                        }
                    }
                    if flags.stopping.load(ordering: .relaxed) {
                        try await send(Self.finalEvent("shutdown", code: "shutdown", message: "the server is shutting down; reconnect with Last-Event-ID to resume"))
                    }
                    group.cancelAll()
                    items.finish()
                    try await writer.finish(nil)
                }
            } onGracefulShutdown: {
                flags.stopping.store(true, ordering: .relaxed)
                items.finish()
            }
        })
    }

    private static func finalEvent(_ name: String, code: String, message: String) -> [UInt8] {
        var json = JSONByteBuffer()
        json.append("event: ")
        json.append(raw: Array(name.utf8))
        json.append("\ndata: {\"code\":")
        json.append(quoted: code)
        json.append(",\"message\":")
        json.append(quoted: message)
        json.append("}\n\n")
        return json.bytes
    }
}

/// What a live tail's tasks share: whether the server is stopping, and when
/// the write under way started (0: none), for the stalled-client watchdog.
private final class LiveFlags: Sendable {
    let stopping = Atomic<Bool>(false)
    let writeStarted = Atomic<UInt64>(0)
}

extension HTTPField.Name {
    /// Server-Sent Events: the id of the last event a reconnecting client received.
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}
