import Foundation
import Ringstore
import Synchronization

/// The writers and readers of one power-loss round.
///
/// Writer *w* owns streams `own-w-0…` (and, one append in fifty, a new stream
/// of its own) and appends to them with `.exact` (or `.noStream`), knowing
/// their versions; all writers share `shared-0…` with
/// `.any`. One call in a hundred hard-deletes (tombstones) one of the
/// writer's new streams, which it then leaves alone. Appends carry one to `maxBatch` events of varied size (up to a few
/// KiB, so writes span several 512-byte sectors and can tear). Readers read
/// the newest event of random streams (which makes the splitter write that
/// stream ahead of its main pass), pages from random versions, and `$all`.
/// Every error before the cut other than a reader timeout or a full journal is a problem.
public final class PowerLossWorkload: Sendable {
    public struct Settings: Sendable {
        public var writers = 6
        public var ownedStreamsPerWriter = 3
        public var sharedStreams = 12
        public var maxBatch = 4
        public var readers = 2
        public var seed: UInt64 = 1

        public init() {}
    }

    private let stopping = Atomic<Bool>(false)
    private let problemList = Mutex<[String]>([])
    private let finished = Mutex<(count: Int, continuation: CheckedContinuation<Void, Never>?)>((0, nil))
    private let taskCount: Int
    /// What each task is doing (writers 0…, readers after them), to name a hung call.
    private let activity = Mutex<[Int: String]>([:])
    let recorder: PowerLossRecorder

    /// Starts the tasks; `isCut` tells errors caused by the cut from real ones.
    public init(store: EventStore, settings: Settings, recorder: PowerLossRecorder, isCut: @escaping @Sendable () -> Bool) {
        self.recorder = recorder
        self.taskCount = settings.writers + settings.readers
        for writer in 0..<settings.writers {
            Task { [self] in
                await write(store, writer: writer, settings: settings, isCut: isCut)
                doing(writer, nil)
                taskFinished()
            }
        }
        for reader in 0..<settings.readers {
            Task { [self] in
                await read(store, reader: reader, settings: settings, isCut: isCut)
                doing(settings.writers + reader, nil)
                taskFinished()
            }
        }
    }

    /// Problems seen so far.
    public var problems: [String] { problemList.withLock { $0 } }

    /// The calls of the tasks that have not finished (after a ``stop(timeout:)`` that timed out).
    public var unfinished: [String] { activity.withLock { $0.sorted { $0.key < $1.key }.map(\.value) } }

    private func doing(_ task: Int, _ what: String?) {
        activity.withLock { $0[task] = what }
    }

    /// Asks every task to stop after its current call.
    public func requestStop() {
        stopping.store(true, ordering: .releasing)
    }

    /// Asks every task to stop after its current call and waits up to `timeout`
    /// for them; false if some did not return (a hung append or read).
    public func stop(timeout: Duration) async -> Bool {
        requestStop()
        return await PowerLossRounds.finishes(within: timeout) { [self] in
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = finished.withLock { f -> Bool in
                    if f.count == taskCount { return true }
                    f.continuation = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        }
    }

    private func taskFinished() {
        let continuation = finished.withLock { f -> CheckedContinuation<Void, Never>? in
            f.count += 1
            guard f.count == taskCount else { return nil }
            defer { f.continuation = nil }
            return f.continuation
        }
        continuation?.resume()
    }

    private func problem(_ text: String) {
        problemList.withLock { $0.append(text) }
    }

    static func ownedStream(writer: Int, index: Int) -> String { "own-\(writer)-\(index)" }
    static func sharedStream(_ index: Int) -> String { "shared-\(index)" }

    /// An event whose data names its stream and is padded to a varied size.
    static func event(stream: String, writer: Int, sequence: Int, random: inout SeededRandom) -> EventData {
        let roll = random.next() % 100
        let padding = roll < 60 ? Int(random.next() % 200) : roll < 95 ? Int(random.next() % 1500) : Int(random.next() % 5000)
        let letter = Character(UnicodeScalar(UInt8(97 + random.next() % 26)))
        let pad = String(repeating: letter, count: padding)
        return EventData(type: "PowerLoss", json: #"{"stream":"\#(stream)","w":\#(writer),"n":\#(sequence),"pad":"\#(pad)"}"#)
    }

    /// True if `event`'s data is one this workload wrote for its stream.
    static func isWhole(_ event: RecordedEvent) -> Bool {
        let prefix = Array(#"{"stream":"\#(event.stream)","#.utf8)
        return event.data.count > prefix.count && Array(event.data.prefix(prefix.count)) == prefix && event.data.last == UInt8(ascii: "}")
    }

    private func write(_ store: EventStore, writer: Int, settings: Settings, isCut: @Sendable () -> Bool) async {
        var random = SeededRandom(seed: settings.seed &+ UInt64(writer) &* 7919)
        var owned: [String: UInt64?] = [:]
        for index in 0..<settings.ownedStreamsPerWriter {
            let stream = Self.ownedStream(writer: writer, index: index)
            do {
                owned[stream] = try store.currentVersion(of: stream)
            } catch {
                if !isCut() { problem("writer \(writer): current version of \(stream) failed before the cut: \(error)") }
                return
            }
        }
        var sequence = 0
        while !stopping.load(ordering: .acquiring) {
            if random.next() % 100 == 0,
               let victim = owned.keys.sorted().first(where: { $0.hasPrefix("new-") && owned[$0]! != nil }) {
                let version = owned[victim]!!
                let number = recorder.beginTombstone(of: victim)
                doing(writer, "writer \(writer): tombstone of \(victim) expecting \(version)")
                do {
                    try await store.tombstoneStream(victim, expectedVersion: .exact(version))
                    recorder.tombstoneAcknowledged(number, written: store.stats().writtenPosition)
                    owned.removeValue(forKey: victim)
                } catch {
                    if isCut() { return }
                    if let error = error as? RingstoreError, error.code == .journalFull || error.code == .readerTimeout {
                        // Not acknowledged: it may or may not have been written, so the stream is left alone.
                        owned.removeValue(forKey: victim)
                        continue
                    }
                    problem("writer \(writer): tombstone of \(victim) (expected \(version)) failed before the cut: \(error)")
                    return
                }
                continue
            }
            let roll = random.next() % 100
            let useOwned = roll < 60
            let stream: String
            if roll < 2 {
                // A new stream now and then: new files, folders, catalog names and,
                // once they grow, index files are what a checkpoint must make durable.
                stream = "new-\(writer)-\(String(random.next() % (1 << 40), radix: 36))"
                owned[stream] = .some(nil)
            } else if useOwned {
                stream = owned.keys.sorted()[Int(random.next() % UInt64(owned.count))]
            } else {
                stream = Self.sharedStream(Int(random.next() % UInt64(settings.sharedStreams)))
            }
            let count = random.next() % 2 == 0 ? 1 : Int(random.next() % UInt64(settings.maxBatch)) + 1
            let events = (0..<count).map { _ in
                sequence += 1
                return Self.event(stream: stream, writer: writer, sequence: sequence, random: &random)
            }
            let expected: ExpectedVersion = useOwned ? (owned[stream]!.map { .exact($0) } ?? .noStream) : .any
            let number = recorder.begin(stream: stream, events: events, expected: expected)
            doing(writer, "writer \(writer): append of \(events.count) events to \(stream) expecting \(expected)")
            do {
                let result = try await store.append(to: stream, expectedVersion: expected, events: events)
                recorder.acknowledged(number, result)
                if useOwned { owned[stream] = result.lastVersion }
            } catch {
                if isCut() { return }
                if let error = error as? RingstoreError, error.code == .journalFull { continue }
                problem("writer \(writer): append to \(stream) (expected \(expected)) failed before the cut: \(error)")
                return
            }
        }
    }

    private func read(_ store: EventStore, reader: Int, settings: Settings, isCut: @Sendable () -> Bool) async {
        var random = SeededRandom(seed: settings.seed &+ 1_000_003 &* UInt64(reader + 1))
        while !stopping.load(ordering: .acquiring) {
            let stream = random.next() % 2 == 0
                ? Self.ownedStream(writer: Int(random.next() % UInt64(settings.writers)), index: Int(random.next() % UInt64(settings.ownedStreamsPerWriter)))
                : Self.sharedStream(Int(random.next() % UInt64(settings.sharedStreams)))
            let task = settings.writers + reader
            do {
                let events: [RecordedEvent]
                switch random.next() % 4 {
                case 0, 1:
                    doing(task, "reader \(reader): newest event of \(stream)")
                    events = try await store.read(stream: stream, from: .end, direction: .backwards, maxCount: 1).collect()
                case 2:
                    let current = try store.currentVersion(of: stream) ?? 0
                    let from = random.next() % (current + 1)
                    doing(task, "reader \(reader): \(stream) from version \(from)")
                    events = try await store.read(stream: stream, from: .version(from), maxCount: 20).collect()
                default:
                    doing(task, "reader \(reader): $all backwards from the end")
                    events = try await store.readAll(from: .end, direction: .backwards, maxCount: 30).collect()
                }
                for event in events where !Self.isWhole(event) {
                    problem("reader \(reader): event \(event.id) of \(event.stream) version \(event.version) read back damaged")
                }
            } catch let error as RingstoreError where error.code == .streamNotFound || error.code == .readerTimeout {
                continue
            } catch {
                if isCut() { return }
                problem("reader \(reader): read of \(stream) failed before the cut: \(error)")
                return
            }
            await Task.yield()
        }
    }
}
