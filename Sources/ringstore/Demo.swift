import ArgumentParser
import Foundation
import Ringstore
import RingstoreBench
import Synchronization

/// `ringstore demo`: ingest a realistic workload into an embedded store, read
/// samples back, verify them, and print a summary.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest a realistic workload into an embedded store, verify samples, print a summary.")

    @Option(help: "Store folder (default: a new temporary folder, removed afterwards).") var dir: String?
    @Option(help: "Events to ingest.") var events = 1_000_000
    @Option(help: "Streams to spread them over.") var streams = 10_000
    @Option(help: "Concurrent writers.") var writers = 64
    @Option(help: "Most events per append (each append takes 1 to this many).") var maxBatch = 20
    @Option(help: "Event payload size in bytes (JSON).") var eventSize = 200

    func validate() throws {
        guard events > 0, streams > 0, writers > 0, maxBatch > 0, eventSize >= 32 else {
            throw ValidationError("events, streams, writers and max-batch must be positive, event-size at least 32")
        }
    }

    func run() async throws {
        let directory = dir ?? NSTemporaryDirectory() + "ringstore-demo-\(UUID().uuidString.prefix(8))"
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: directory) } }
        // Settings come from RINGSTORE_* environment variables; the demo waits longer for ring space by default.
        var base = Configuration()
        base.journalFullWait = .seconds(30)
        let configuration = try Configuration.fromEnvironment(base: base)

        let store = try await EventStore.open(at: directory, configuration: configuration, logger: .commandLine)
        // SIGINT or SIGTERM mid-run: close the store cleanly (every acknowledged
        // event durable and split, the lock released), remove a temporary one, exit 130 or 143.
        let temporary = dir == nil
        let signals = GracefulShutdown(closing: store, afterClose: {
            if temporary { try? FileManager.default.removeItem(atPath: directory) }
        })
        defer { signals.cancel() }
        do {
            try await ingestVerifyAndReport(store, directory: directory, configuration: configuration)
        } catch {
            try? await store.close()
            await signals.exitIfSignalled()
            throw error
        }
    }

    /// The demo's work on the open store, up to its clean close and the summary.
    private func ingestVerifyAndReport(_ store: EventStore, directory: String, configuration: Configuration) async throws {
        let mode = if case .relaxed = configuration.durability { "relaxed" } else { "durable" }
        print("Ringstore demo: \(grouped(events)) events of \(eventSize) bytes over \(grouped(streams)) streams from \(writers) writers, \(mode) appends")
        print("store: \(directory)")
        fflush(nil)  // every output stream: the lines show at once when piped, before the summary
        let journalBefore = store.stats().writtenPosition
        let filesBefore = ProcessMetrics.fileBytes(of: directory, excluding: "journal.ring")
        let perWriter = (events + writers - 1) / writers
        let progress = ProgressCounter()
        let started = ContinuousClock.now
        let reporter = Task {
            var bar = Progress(total: events, label: "ingest")
            while !Task.isCancelled {
                let done = progress.value
                let seconds = (ContinuousClock.now - started).seconds
                let stats = store.stats()
                let ring = Int(100 * stats.journalBytesInUse / max(1, stats.journalCapacity))
                bar.update(done, detail: "\(grouped(Int(Double(done) / max(seconds, 0.001)))) events/s, ring \(ring)% in use, split lag \(megabytes(stats.splitLag))")
                if done >= events { break }
                try? await Task.sleep(for: .milliseconds(200))
            }
            bar.update(progress.value)
            bar.finish()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var random = SeededRandom(seed: UInt64(writer) &+ 1)
                    var written = 0
                    let quota = min(perWriter, events - writer * perWriter)
                    while written < quota {
                        let count = min(quota - written, Int.random(in: 1...maxBatch, using: &random))
                        let stream = "device-\(Int.random(in: 0..<streams, using: &random))"
                        let batch = (0..<count).map { i in
                            EventData(type: "Reading", data: DemoPayload.make(stream: stream, sequence: written + i, size: eventSize))
                        }
                        try await store.append(to: stream, events: batch)
                        written += count
                        progress.add(count)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (ContinuousClock.now - started).seconds
        reporter.cancel()
        _ = await reporter.value
        let stats = store.stats()

        // Read samples back and check them.
        var sampled = 0
        var sampleEvents = 0
        let readStarted = ContinuousClock.now
        for index in stride(from: 0, to: streams, by: max(1, streams / 100)) {
            let stream = "device-\(index)"
            guard (try store.currentVersion(of: stream)) != nil else { continue }
            let read = try await store.read(stream: stream).collect()
            for (i, event) in read.enumerated() where event.version != UInt64(i) || !DemoPayload.check(event) {
                throw ValidationError("verification failed: \(stream) version \(event.version) is wrong")
            }
            sampled += 1
            sampleEvents += read.count
        }
        let streamReadSeconds = (ContinuousClock.now - readStarted).seconds
        let waits = store.stats()
        // The same streams again, now that they are in their files and caches.
        let warmStarted = ContinuousClock.now
        var warmEvents = 0
        for index in stride(from: 0, to: streams, by: max(1, streams / 100)) {
            guard (try store.currentVersion(of: "device-\(index)")) != nil else { continue }
            warmEvents += try await store.read(stream: "device-\(index)").collect().count
        }
        let warmSeconds = (ContinuousClock.now - warmStarted).seconds
        // Every event once, in global order.
        let allStarted = ContinuousClock.now
        var allCount = 0
        var lastPosition: UInt64?
        for try await event in store.readAll() {
            if let last = lastPosition, event.position <= last { throw ValidationError("verification failed: $all out of order at \(event.position)") }
            lastPosition = event.position
            allCount += 1
        }
        let allSeconds = (ContinuousClock.now - allStarted).seconds
        guard allCount >= events else { throw ValidationError("verification failed: $all returned \(allCount) of \(events) events") }
        try await store.close()
        let onDisk = ProcessMetrics.diskUsage(of: directory)

        let journalBytes = stats.writtenPosition - journalBefore
        let streamBytes = ProcessMetrics.fileBytes(of: directory, excluding: "journal.ring") - filesBefore
        let payloadBytes = UInt64(events * eventSize)
        func perPayloadByte(_ bytes: UInt64) -> String { (Double(bytes) / Double(payloadBytes)).formatted(2) }
        print(table([
            ("events appended", grouped(Int(stats.eventsAcknowledged))),
            ("appends", grouped(Int(stats.appendsAcknowledged))),
            ("elapsed", elapsed.formatted(2) + " s"),
            ("throughput", grouped(Int(Double(stats.eventsAcknowledged) / elapsed)) + " events/s, " + (Double(payloadBytes) / 1_048_576 / elapsed).formatted(1) + " MiB/s of payload"),
            ("flushes", "\(grouped(Int(stats.flushes))) (\((Double(stats.appendsAcknowledged) / Double(max(1, stats.flushes))).formatted(1)) appends per flush)"),
            ("bytes written", megabytes(journalBytes + streamBytes) + " = \(perPayloadByte(journalBytes + streamBytes)) per payload byte (journal \(perPayloadByte(journalBytes)), stream files and indexes \(perPayloadByte(streamBytes)))"),
            ("store on disk", megabytes(onDisk)),
            ("peak memory (RSS)", megabytes(ProcessMeter.peakResidentBytes)),
            ("streams", grouped(stats.streamCount)),
            ("verified", "\(grouped(sampleEvents)) events in \(sampled) sampled streams: all present, in order, intact"),
            ("stream reads", grouped(Int(Double(sampleEvents) / max(streamReadSeconds, 1e-6))) + " events/s first read, "
                + grouped(Int(Double(warmEvents) / max(warmSeconds, 1e-6))) + " events/s warm"),
            ("reader waits", "\(grouped(waits.readerWaits)) waits for the splitter, p99 \(waits.readerWaitP99Milliseconds.formatted(1)) ms"),
            ("$all read", "\(grouped(allCount)) events in order, " + grouped(Int(Double(allCount) / max(allSeconds, 1e-6))) + " events/s"),
        ]))
    }
}

/// Demo payloads: JSON readings that carry their stream and sequence so reads can be checked.
/// The demo's events: `{"stream":"…","seq":…,"temperature":…,"note":"calm north …"}`,
/// `eventSize` bytes (longer when the stream's name does not fit). The note's
/// words vary from event to event as free text does, so the bytes written per
/// payload byte the summary prints are those of data that compresses as JSON
/// does (about 2.6× in a stream file's blocks), not of repeated padding.
enum DemoPayload {
    static func make(stream: String, sequence: Int, size: Int) -> [UInt8] {
        var bytes = Array("{\"stream\":\"\(stream)\",\"seq\":\(sequence),\"temperature\":\(20 + sequence % 15).\(sequence % 10),\"note\":\"".utf8)
        let note = max(0, size - bytes.count - 2)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: note))
        var random = SeededRandom(seed: UInt64(truncatingIfNeeded: sequence))
        bytes.withUnsafeMutableBufferPointer { PayloadNote.window(random.next(), into: UnsafeMutableBufferPointer(rebasing: $0[($0.count - note)...])) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: "}")])
        return bytes
    }

    static func check(_ event: RecordedEvent) -> Bool {
        String(decoding: event.data.prefix(80), as: UTF8.self).hasPrefix("{\"stream\":\"\(event.stream)\",")
    }
}

/// A counter shared by the writers and the progress display (a class only
/// because an `Atomic` cannot be captured by the writers' tasks itself).
final class ProgressCounter: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ n: Int) { count.add(n, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

