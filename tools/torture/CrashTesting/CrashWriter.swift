import Logging
import Foundation
@_spi(Benchmarks) import Ringstore

/// The process that gets killed: appends forever from many concurrent writers
/// and reports every append on standard output before sending it (``Sending``)
/// and once acknowledged (``Acknowledgement``), one line each, each written
/// with a single `write` so a kill never splits one.
public enum CrashWriter {
    /// The payload every event carries, so that a verifier can tell a whole,
    /// correct event from a damaged one.
    public static func payload(stream: String, writer: Int, sequence: Int) -> [UInt8] {
        Array("{\"stream\":\"\(stream)\",\"writer\":\(writer),\"seq\":\(sequence)}".utf8)
    }

    /// The line a writer holding its splitter (`holdSplit`) prints once the ring is nearly full.
    public static let ringFullLine = "RING FULL"

    /// With `holdSplit`, nothing is split or checkpointed: the ring fills with
    /// records after the checkpoint, every one of which a reopen must replay
    /// (the case of the design's bound on reopening after a crash with a full
    /// journal). ``ringFullLine`` is printed once less than 1 % of it is left.
    public static func run(directory: String, configuration: Configuration, writers: Int, streams: Int,
                           maxBatch: Int, seed: UInt64, holdSplit: Bool = false) async throws -> Never {
        let store = try await EventStore.open(at: directory, configuration: configuration, logger: .crashTesting)
        if holdSplit { store.holdSplitterForBenchmarks() }
        writeLine("READY\n")
        await withTaskGroup(of: Void.self) { group in
            if holdSplit {
                group.addTask {
                    while true {
                        let stats = store.stats()
                        if stats.journalBytesInUse * 100 >= stats.journalCapacity * 99 {
                            writeLine(ringFullLine + "\n")
                            return
                        }
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
            }
            for writer in 0..<writers {
                group.addTask {
                    var random = SeededRandom(seed: seed &+ UInt64(writer) &* 7919)
                    var sequence = 0
                    while true {
                        let stream = "crash-\(random.next() % UInt64(streams))"
                        let count = Int(random.next() % UInt64(maxBatch)) + 1
                        let sending = Sending(writer: writer, firstSequence: sequence + 1, ids: (0..<count).map { _ in UUID() }, stream: stream)
                        sequence += count
                        let events = sending.events
                        writeLine(sending.line)
                        do {
                            let result = try await store.append(to: stream, events: events)
                            writeLine(Acknowledgement(stream: stream, firstVersion: result.firstVersion,
                                                      firstPosition: result.firstPosition, ids: events.map(\.id)).line)
                        } catch {
                            try? await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
        }
        fatalError("writers never finish")
    }

    static func writeLine(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(1, bytes.baseAddress! + done, bytes.count - done)
                if n <= 0 { return }
                done += n
            }
        }
    }
}
