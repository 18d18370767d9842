// A fixed run of JournalAppend's workload for counting instructions with
// callgrind (see cpu-per-event.sh): 64 concurrent writers appending one
// 200-byte JSON event per append, durable, with `.any` expected version, to
// streams drawn from 10,000 by a fixed xorshift sequence.
//
// The benchmark harness times rounds for a few seconds, so under callgrind (50
// to 100 times slower) its work would depend on the machine's speed. This does
// a set number of appends instead: first one to every stream (so every stream
// exists, as in a running store, and a short run and a long one pay the same
// for creating them), then `--events` more. The splitter is held the whole
// time, so the count is the journal's alone: validation, the writer's lock
// section, encoding, the flusher's writes and syncs, the acknowledger. The
// process exits without closing the store (a close would split everything).
//
// Usage: JournalCPU --events N --dir FOLDER   (FOLDER must not exist; remove it afterwards)

import Foundation
@_spi(Benchmarks) import Ringstore
import Synchronization

/// The workload's fixed parts.
enum Workload {
    static let writers = 64
    static let streams = 10_000
    static let eventSize = 200
    static let names = (0..<streams).map { "stream-\($0)" }
    /// A 200-byte JSON document, as the benchmarks append.
    static let payload: [UInt8] = {
        let head = #"{"sensor":"sensor-0042","seq":123456789,"celsius":21.375,"pad":""#
        let tail = #""}"#
        return Array((head + String(repeating: "x", count: eventSize - head.utf8.count - tail.utf8.count) + tail).utf8)
    }()
}

/// The counter the writers claim appends with.
final class Counter: Sendable {
    let next = Atomic<Int>(0)
}

/// Appends `streams.count` appends of one event from `Workload.writers` tasks, append `i` to `streams[i]`.
func run(_ store: EventStore, streams: [String]) async throws {
    let counter = Counter()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<Workload.writers {
            group.addTask {
                while true {
                    let index = counter.next.add(1, ordering: .relaxed).oldValue
                    guard index < streams.count else { return }
                    try await store.append(to: streams[index], expectedVersion: .any,
                                           events: [EventData(type: "Reading", data: Workload.payload)])
                }
            }
        }
        try await group.waitForAll()
    }
}

func option(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

guard let eventsText = option("--events"), let events = Int(eventsText), events > 0, let dir = option("--dir") else {
    FileHandle.standardError.write(Data("usage: JournalCPU --events N --dir FOLDER\n".utf8))
    exit(2)
}
guard !FileManager.default.fileExists(atPath: dir) else {
    FileHandle.standardError.write(Data("JournalCPU: \(dir) already exists\n".utf8))
    exit(2)
}
// Built before the run, so that the count is the store's, not the generator's.
var random = SeededRandom(seed: 1)
let measured = (0..<events).map { _ in Workload.names[Int(random.next() % UInt64(Workload.streams))] }

var configuration = Configuration()
configuration.journalCapacity = 128 << 20  // holds the whole run: the splitter frees nothing
configuration.durability = .durable
let store = try await EventStore.open(at: dir, configuration: configuration)
store.holdSplitterForBenchmarks()
try await run(store, streams: Workload.names)
let clock = ContinuousClock()
let start = clock.now
try await run(store, streams: measured)
let elapsed = start.duration(to: clock.now)
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("JournalCPU: \(events) events after \(Workload.streams) warm-up appends in \(String(format: "%.2f", seconds)) s, \(Int(Double(events) / seconds)) events/s")
exit(0)
