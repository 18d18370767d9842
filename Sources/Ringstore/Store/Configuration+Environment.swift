#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Configuration {
    /// The settings that can come from the environment, with what each means.
    public static let environmentVariables: [(name: String, meaning: String)] = [
        ("RINGSTORE_JOURNAL_MB", "journal size in MiB, for a new store (default 64)"),
        ("RINGSTORE_DURABILITY", "durable or relaxed (default durable)"),
        ("RINGSTORE_MAX_FLUSH_DELAY_MS", "durable mode: longest wait before a flush under load (default 2)"),
        ("RINGSTORE_FLUSH_INTERVAL_MS", "relaxed mode: flush interval, the loss window on power failure (default 5000)"),
        ("RINGSTORE_MAX_EVENT_BYTES", "largest data + metadata of one event (default 1048576)"),
        ("RINGSTORE_JOURNAL_FULL_WAIT_MS", "how long an append waits for ring space (default 5000)"),
        ("RINGSTORE_READER_WAIT_MS", "how long a stream read waits for the splitter (default 5000)"),
        ("RINGSTORE_MAX_OPEN_FILES", "stream files kept open at most (default 256)"),
        ("RINGSTORE_COMPRESSION", "on or off: LZ4 for stream files (default on)"),
        ("RINGSTORE_CHECKPOINT_PACING", "on or off: pause between slices of a checkpoint's block building while the ring has room (default off)"),
        ("RINGSTORE_IDEMPOTENCY_WINDOW", "recent appends remembered for retries with .any (default 20000)"),
        ("RINGSTORE_BLOCK_CACHE_MB", "memory for decoded stream-file blocks shared by readers, in MiB (default 16; 0 turns it off)"),
        ("RINGSTORE_STREAM_BUCKETS", "on or off: small streams move into 64 shared bucket files, not files of their own (default off)"),
        ("RINGSTORE_SPLIT_SEGMENTS_MB", "what the shared split segments may hold before the oldest are moved into stream files, in MiB (default 4 journals)"),
    ]

    /// Variables that belong to other parts of Ringstore (the server) and are not store settings.
    static let otherVariables: Set<String> = ["RINGSTORE_TOKEN"]

    /// A configuration from `base` overridden by `RINGSTORE_*` variables in
    /// `environment` (by default the process's). Throws naming the variable for a
    /// value that does not parse or is out of range, and for an unknown
    /// `RINGSTORE_*` name (most likely a typo).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       base: Configuration = Configuration()) throws -> Configuration {
        var configuration = base
        let known = Set(environmentVariables.map(\.name))
        for name in environment.keys.sorted() where name.hasPrefix("RINGSTORE_") && !known.contains(name) && !otherVariables.contains(name) {
            throw RingstoreError(.invalidArgument, "unknown setting \(name); known settings: \(environmentVariables.map(\.name).joined(separator: ", "))")
        }
        func integer(_ name: String, in range: ClosedRange<Int64>) throws -> Int64? {
            guard let text = environment[name] else { return nil }
            guard let value = Int64(text.trimmingWhitespace), range.contains(value) else {
                throw RingstoreError(.invalidArgument, "\(name)=\(text) is not a whole number between \(range.lowerBound) and \(range.upperBound)")
            }
            return value
        }
        func choice(_ name: String, _ options: [String]) throws -> String? {
            guard let text = environment[name] else { return nil }
            let value = text.trimmingWhitespace.lowercased()
            guard options.contains(value) else {
                throw RingstoreError(.invalidArgument, "\(name)=\(text) must be one of: \(options.joined(separator: ", "))")
            }
            return value
        }
        if let mb = try integer("RINGSTORE_JOURNAL_MB", in: 1...(1 << 20)) { configuration.journalCapacity = UInt64(mb) << 20 }
        let delay = try integer("RINGSTORE_MAX_FLUSH_DELAY_MS", in: 0...60_000)
        let interval = try integer("RINGSTORE_FLUSH_INTERVAL_MS", in: 1...86_400_000)
        switch try choice("RINGSTORE_DURABILITY", ["durable", "relaxed"]) {
        case "relaxed":
            configuration.durability = .relaxed(flushInterval: .milliseconds(interval ?? 5000))
        case "durable":
            configuration.durability = .durable(maxFlushDelay: .milliseconds(delay ?? 2))
        default:
            switch configuration.durability {
            case .durable(let current): configuration.durability = .durable(maxFlushDelay: delay.map { .milliseconds($0) } ?? current)
            case .relaxed(let current): configuration.durability = .relaxed(flushInterval: interval.map { .milliseconds($0) } ?? current)
            }
        }
        if let bytes = try integer("RINGSTORE_MAX_EVENT_BYTES", in: 1...(1 << 30)) {
            configuration.maxEventSize = Int(bytes)
        } else if UInt64(configuration.maxEventSize) > configuration.journalCapacity / 4 {
            // A small journal chosen without an event size: the largest event it can hold.
            configuration.maxEventSize = Int(configuration.journalCapacity / 4)
        }
        if let ms = try integer("RINGSTORE_JOURNAL_FULL_WAIT_MS", in: 0...86_400_000) { configuration.journalFullWait = .milliseconds(ms) }
        if let ms = try integer("RINGSTORE_READER_WAIT_MS", in: 0...86_400_000) { configuration.readerWait = .milliseconds(ms) }
        if let files = try integer("RINGSTORE_MAX_OPEN_FILES", in: 4...1_000_000) { configuration.maxOpenFiles = Int(files) }
        if let value = try choice("RINGSTORE_COMPRESSION", ["on", "off"]) { configuration.compression = value == "on" }
        if let value = try choice("RINGSTORE_CHECKPOINT_PACING", ["on", "off"]) { configuration.checkpointPacing = value == "on" }
        if let window = try integer("RINGSTORE_IDEMPOTENCY_WINDOW", in: 0...10_000_000) { configuration.idempotencyWindow = Int(window) }
        if let megabytes = try integer("RINGSTORE_BLOCK_CACHE_MB", in: 0...(1 << 20)) { configuration.blockCacheBytes = Int(megabytes) << 20 }
        if let value = try choice("RINGSTORE_STREAM_BUCKETS", ["on", "off"]) { configuration.streamBuckets = value == "on" }
        if let megabytes = try integer("RINGSTORE_SPLIT_SEGMENTS_MB", in: 1...(1 << 30)) { configuration.splitSegmentBudget = UInt64(megabytes) << 20 }
        try configuration.validate()
        return configuration
    }
}
