import ArgumentParser
import Foundation
import Ringstore
import RingstoreBench
import Synchronization

/// `ringstore bench`: drives a reproducible append workload against an embedded
/// store (and, with `--compare sqlite`, the same workload against SQLite; with
/// `--peer-check` also the minimal GRDB program) and prints throughput, latency,
/// write amplification and memory. Each system starts once the previous one is
/// closed and its file system synced, so that none pays for another's writeback.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark appends (and reads) on an embedded store, optionally side by side with SQLite.",
        discussion: """
            Each writer owns the streams numbered writer, writer + writers, …, and appends to one of them at random \
            with an exact expected version. Store settings other than durability come from RINGSTORE_* variables. \
            The table goes to stdout (one JSON object with --json), progress to stderr.
            """)

    enum DurabilityOption: String, ExpressibleByArgument, CaseIterable {
        case durable, relaxed
    }

    /// What a `--read-store` pass reads.
    enum ReadStoreReads: String, ExpressibleByArgument, CaseIterable {
        case all
        case allOnly = "all-only"
        case streamsOnly = "streams-only"
    }

    enum PayloadOption: String, ExpressibleByArgument, CaseIterable {
        case sensor, padded
    }

    enum Peer: String, ExpressibleByArgument, CaseIterable {
        case sqlite
    }

    @Option(help: "Streams to spread events over (each writer owns streams/writers of them).") var streams = 10_000
    @Option(help: "Events to append (default 1,000,000; without --duration).") var events: Int?
    @Option(help: "Bytes of each event's JSON payload.") var eventSize = 200
    @Option(help: "What the payloads look like: sensor (a device's reading whose values and note vary; compresses as such JSON does) or padded (a sequence number and xxx… padding, which compresses about sixfold: the bench's payload before December 2026).") var payload = PayloadOption.sensor
    @Option(help: "Concurrent writers.") var writers = 64
    @Option(help: "Events per append.") var batch = 1
    @Option(help: "When appends are acknowledged: durable (after a flush) or relaxed.") var durability = DurabilityOption.durable
    @Option(help: "Append for this many seconds (with --events too: whichever comes first).") var duration: Double?
    @Flag(help: "First append one event to every stream, unmeasured, so that the run starts with existing streams as a running store has (their events in split segments: a stream gets its own file once it holds a block's worth, which with 256 writers most reach during a 10 s run).") var warmUp = false
    @Option(help: "Offer this many events per second in all, each writer on a fixed schedule (default: as fast as possible); latency counts from when an append was due.") var rate: Double?
    @Flag(help: "After the ingest, read every stream and then $all back and report read rates.") var read = false
    @Option(help: "Appends whose call takes at least this many milliseconds count as slow in the report's \"appends ≥ … ms\" rows, which say what they ran alongside (on a slow card, where every append takes milliseconds, raise it).") var slowAppendMs = 1.0
    @Option(help: "Live $all subscribers during the ingest (Ringstore only): delivery rate and latency from acknowledgement to delivery.") var subscribers = 0
    @Option(help: "Run the same workload against a peer in the same run: sqlite.") var compare: Peer?
    @Option(help: "Events for the peer (default: --events, at most 100,000, since SQLite is much slower).") var compareEvents: Int?
    @Flag(help: "With --compare sqlite: then run the simplest GRDB program doing the same appends (sqlite-minimal), and print the peer's events/s over its.") var peerCheck = false
    @Flag(help: "Print one JSON object instead of the table.") var json = false
    @Option(help: "Folder for the stores (must not exist; kept afterwards). Default: a temporary folder, removed afterwards.") var dir: String?
    @Option(help: "Only read: open this existing store (or a folder kept by --dir), read $all and then every stream from start to end --passes times, and print the rates; nothing is appended.") var readStore: String?
    @Option(help: "With --read-store: how many passes (the first warms the caches; the median is printed).") var passes = 3
    @Option(help: "With --read-store: what each pass reads: all ($all, then every stream), all-only ($all) or streams-only (every stream), so that a profile covers one read path.") var reads = ReadStoreReads.all

    /// The workload as asked for: a count bound unless only a duration is given.
    var workload: Workload {
        Workload(streams: streams, events: events ?? (duration == nil ? 1_000_000 : nil), eventSize: eventSize,
                 payload: payload == .sensor ? .sensor : .padded, writers: writers, batch: batch, durability: durability == .durable ? .durable : .relaxed,
                 duration: duration, read: read, subscribers: subscribers, rate: rate, warmUp: warmUp, slowAppendMs: slowAppendMs)
    }

    /// The peer's event bound: `--compare-events`, else the workload's, at most 100,000.
    var peerEvents: Int? {
        compareEvents ?? workload.events.map { min($0, 100_000) }
    }

    func validate() throws {
        if reads != .all, readStore == nil { throw ValidationError("--reads needs --read-store") }
        if let readStore {
            guard FileManager.default.fileExists(atPath: readStore) else { throw ValidationError("--read-store \(readStore) does not exist") }
            guard passes >= 1 else { throw ValidationError("--passes must be at least 1 (got \(passes))") }
            return
        }
        do {
            try workload.validate()
        } catch {
            throw ValidationError(error.message)
        }
        if let compareEvents {
            guard compare != nil else { throw ValidationError("--compare-events needs --compare sqlite") }
            guard compareEvents >= 1 else { throw ValidationError("--compare-events must be at least 1 (got \(compareEvents))") }
        }
        if peerCheck, compare == nil { throw ValidationError("--peer-check needs --compare sqlite") }
        if let dir, FileManager.default.fileExists(atPath: dir) {
            throw ValidationError("--dir \(dir) already exists; give a new folder (the bench needs empty stores)")
        }
    }

    func run() async throws {
        if let readStore { return try await runReadStore(readStore) }
        JournalSyncTimes.bootstrap()  // before the store opens: its sync timer is made then
        let root = dir ?? NSTemporaryDirectory() + "ringstore-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let cleanup = TemporaryFolderCleanup(path: dir == nil ? root : nil)
        defer { cleanup.remove() }
        let workload = workload

        if !json {
            let bound = [workload.events.map { "\(grouped($0)) events" }, workload.duration.map { "\($0) s" }]
                .compactMap { $0 }.joined(separator: " or ")
            print("ringstore bench: \(bound), \(workload.eventSize)-byte \(workload.payload.rawValue) events over \(grouped(workload.streams)) streams, "
                + "\(workload.writers) writers, \(workload.batch) per append, \(workload.durability.rawValue)"
                + (compare.map { " — compared with \($0.rawValue)\(peerCheck ? " and \(SQLiteMinimal.name)" : "") (\(peerEvents.map { grouped($0) + " events" } ?? "same duration"))" } ?? ""))
        }

        var results: [SystemResult] = []
        try await reportingErrors {
            do {
                let configuration = try storeConfiguration(durability: workload.durability)
                let ringstore = try await RingstoreSystem.open(at: root + "/ringstore", configuration: configuration, logger: .commandLine)
                let signals = GracefulShutdown(closing: ringstore.store, afterClose: cleanup.remove)
                defer { signals.cancel() }
                results.append(try await runClosing(ringstore, workload: workload))
                if compare == .sqlite {
                    try FileSystemSync.sync(root)
                    try FileManager.default.createDirectory(atPath: root + "/sqlite", withIntermediateDirectories: true)
                    let sqlite = try SQLitePeer.create(at: root + "/sqlite/events.sqlite", durability: workload.durability)
                    results.append(try await runClosing(sqlite, workload: workload.limited(toEvents: peerEvents)))
                }
                if peerCheck {
                    try FileSystemSync.sync(root)
                    try FileManager.default.createDirectory(atPath: root + "/sqlite-minimal", withIntermediateDirectories: true)
                    if !json { FileHandle.standardError.write(Data("\(SQLiteMinimal.name): running…\n".utf8)) }
                    results.append(try await SQLiteMinimal.run(workload.limited(toEvents: peerEvents), at: root + "/sqlite-minimal/events.sqlite"))
                }
            } catch let error as BenchError {
                FileHandle.standardError.write(Data("ringstore bench: \(error.message)\n".utf8))
                throw ExitCode.failure
            }
        }
        let report = BenchReport(workload: workload, compare: compare?.rawValue, compareEvents: peerEvents, peerCheck: peerCheck, results: results)
        print(json ? try report.json() : report.table())
        if !json, dir != nil { print("stores kept in \(root)") }
    }

    /// Settings from RINGSTORE_* variables, with the bench's durability (keeping the
    /// environment's flush delay or interval when it names the same mode) and a
    /// 30 s wait for ring space, so that a burst waits for the splitter rather than fail.
    private func storeConfiguration(durability: Workload.Durability) throws -> Configuration {
        var base = Configuration()
        base.journalFullWait = .seconds(30)
        var configuration = try Configuration.fromEnvironment(base: base)
        switch (durability, configuration.durability) {
        case (.durable, .durable), (.relaxed, .relaxed): break
        case (.durable, _): configuration.durability = .durable
        case (.relaxed, _): configuration.durability = .relaxed
        }
        return configuration
    }

    /// Runs `workload` on `system` with a progress bar on stderr, and closes the system whatever happens.
    private func runClosing(_ system: some BenchSystem, workload: Workload) async throws -> SystemResult {
        let bar = Mutex(Progress(total: 1000, label: system.name))
        let runner = WorkloadRunner(workload: workload) { progress in
            let rate = Double(progress.events) / max(progress.elapsed, 0.001)
            bar.withLock { bar in
                bar.update(Int(progress.fraction * 1000),
                           detail: "\(grouped(progress.events)) events, \(grouped(Int(rate))) events/s, \(progress.detail)")
                if progress.finished { bar.finish() }
            }
        }
        do {
            let result = try await runner.run(system)
            try await system.close()
            return result
        } catch {
            try? await system.close()
            throw error
        }
    }
}

/// Removes the bench's temporary folder once, at the end or on a signal.
final class TemporaryFolderCleanup: Sendable {
    private let path: Mutex<String?>

    init(path: String?) { self.path = Mutex(path) }

    func remove() {
        if let path = path.withLock({ p in defer { p = nil }; return p }) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
