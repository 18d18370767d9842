/// What `ringstore bench` asks of each system: the same writers, streams, event
/// sizes and batching, so that two systems' rows can be compared.
///
/// Each writer owns the streams whose number is congruent to its own modulo
/// `writers`, so it knows every owned stream's version and appends with an exact
/// expected version (`.noStream` for the first append): both systems check a real
/// expected version on every append.
public struct Workload: Sendable, Codable, Hashable {
    /// When an append is acknowledged: after a flush, or once written.
    public enum Durability: String, Sendable, Codable, Hashable, CaseIterable {
        /// Ringstore `.durable`; SQLite `synchronous=FULL`.
        case durable
        /// Ringstore `.relaxed`; SQLite `synchronous=NORMAL`.
        case relaxed
    }

    /// What the events' payloads look like (see ``BenchPayload``).
    public enum Payload: String, Sendable, Codable, Hashable, CaseIterable {
        /// A device's reading whose values and note vary: compresses as such JSON does.
        case sensor
        /// A sequence number and `xxx…` padding: compresses about sixfold (earlier figures).
        case padded
    }

    /// Streams the events are spread over.
    public var streams: Int
    /// Events to append in all (nil: until `duration` has passed).
    public var events: Int?
    /// Bytes of each event's JSON payload.
    public var eventSize: Int
    /// What the payloads look like.
    public var payload: Payload
    /// Concurrent writer tasks.
    public var writers: Int
    /// Events per append.
    public var batch: Int
    public var durability: Durability
    /// Seconds to append for (nil: until `events` are appended). With both, whichever comes first.
    public var duration: Double?
    /// After ingest, read every stream and then `$all` back, and report read rates.
    public var read: Bool
    /// Live `$all` subscribers during the ingest (Ringstore only).
    public var subscribers: Int
    /// Events per second to offer in all (nil: as fast as the system takes them).
    /// Each writer appends on a fixed schedule (its share of the rate); latency
    /// is measured from when an append was due, so a system that falls behind
    /// is charged for the wait (no coordinated omission).
    public var rate: Double?
    /// Before the measured run, append one event to every stream (not measured),
    /// so that the run starts with streams (and their files) that exist, as in a
    /// store that has been running, rather than paying for creating them.
    public var warmUp: Bool
    /// An append whose call takes at least this long (milliseconds) counts as
    /// slow in the ``StallReport``: 1 ms suits a fast disk, where an append
    /// takes a fraction of that; on a slow device every append may take longer.
    public var slowAppendMs: Double

    public init(streams: Int = 10_000, events: Int? = 1_000_000, eventSize: Int = 200, payload: Payload = .sensor,
                writers: Int = 64, batch: Int = 1,
                durability: Durability = .durable, duration: Double? = nil, read: Bool = false, subscribers: Int = 0,
                rate: Double? = nil, warmUp: Bool = false, slowAppendMs: Double = 1) {
        self.streams = streams
        self.events = events
        self.eventSize = eventSize
        self.payload = payload
        self.writers = writers
        self.batch = batch
        self.durability = durability
        self.duration = duration
        self.read = read
        self.subscribers = subscribers
        self.rate = rate
        self.warmUp = warmUp
        self.slowAppendMs = slowAppendMs
    }

    /// Largest event payload the workload accepts (Ringstore's default `maxEventSize`).
    public static let maxEventSize = 1 << 20

    /// Throws naming the first knob that is out of range.
    public func validate() throws(BenchError) {
        func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(BenchError) {
            if !condition { throw BenchError(message()) }
        }
        try check(writers >= 1, "--writers must be at least 1 (got \(writers))")
        try check(streams >= writers, "--streams must be at least --writers, since each writer owns its streams (got \(streams) streams for \(writers) writers)")
        try check(streams <= 100_000_000, "--streams must be at most 100,000,000 (got \(streams))")
        try check(batch >= 1, "--batch must be at least 1 (got \(batch))")
        try check(subscribers >= 0 && subscribers <= 64, "--subscribers must be between 0 and 64 (got \(subscribers))")
        try check(eventSize >= BenchPayload.minimumSize && eventSize <= Self.maxEventSize,
                  "--event-size must be between \(BenchPayload.minimumSize) and \(Self.maxEventSize) bytes (got \(eventSize))")
        if let events { try check(events >= 1, "--events must be at least 1 (got \(events))") }
        try check(slowAppendMs > 0 && slowAppendMs <= 60_000, "--slow-append-ms must be above 0 and at most 60000 (got \(slowAppendMs))")
        if let duration { try check(duration > 0 && duration.isFinite, "--duration must be a positive number of seconds (got \(duration))") }
        if let rate { try check(rate > 0 && rate.isFinite, "--rate must be a positive number of events per second (got \(rate))") }
        try check(events != nil || duration != nil, "give --events or --duration")
    }

    /// The same workload bounded by `limit` events instead (for a slower peer).
    public func limited(toEvents limit: Int?) -> Workload {
        var copy = self
        copy.events = limit
        return copy
    }

    /// The name of stream number `index`.
    public static func streamName(_ index: Int) -> String { "stream-\(index)" }

    /// The stream numbers writer `writer` owns.
    func ownedStreams(of writer: Int) -> [Int] { Array(stride(from: writer, to: streams, by: writers)) }

    /// How many events writer `writer` appends (nil: no count bound). Shares differ by at most one.
    func quota(of writer: Int) -> Int? {
        guard let events else { return nil }
        return events / writers + (writer < events % writers ? 1 : 0)
    }
}

/// A bench failure or a bad knob, with a message naming what was wrong.
public struct BenchError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
