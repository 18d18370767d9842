import Foundation
import Testing
@testable import Ringstore

/// Retries of appends that a checkpoint fell inside (part in the stream file,
/// part still in the ring).
@Suite struct RetryAcrossCheckpointTests {
    /// One append per expected-version kind, each with its own stream: how it
    /// was appended, and the expected version its retry sends.
    static let kinds: [(name: String, seed: Bool, expected: ExpectedVersion)] = [
        ("exact", true, .exact(0)),
        ("no-stream", false, .noStream),
        ("any", true, .any),
        ("stream-exists", true, .streamExists),
    ]

    /// A checkpoint inside each append (the splitter's scan held at its sixth
    /// event): its first five events are in the stream file, the rest in the
    /// ring. The retry, with the same IDs and expected version, must succeed
    /// with the first result and write nothing; it used to be refused with
    /// `.wrongExpectedVersion` (`.exact`, `.noStream`) or `.idempotencyConflict`
    /// (`.any`, `.streamExists`). A retry with one ID changed is still refused.
    @Test func retryOfAnAppendSplitByACheckpointIsRecognised() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        store.splitter.testing.scanLimit.store(0, ordering: .relaxed)  // nothing is split until the test says
        var batches: [String: (events: [EventData], result: AppendResult)] = [:]
        for kind in Self.kinds {
            if kind.seed { try await store.append(to: kind.name, events: [event("seed")]) }
            let events = (0..<10).map { event("\(kind.name)-\($0)") }
            batches[kind.name] = (events, try await store.append(to: kind.name, expectedVersion: kind.expected, events: events))
        }
        for kind in Self.kinds {
            let (events, first) = batches[kind.name]!
            // Checkpoint up to the append's sixth event: versions before it leave the ring.
            let middle = try #require(store.journal.writer.state.withLock {
                $0.index.position(of: kind.name, version: first.firstVersion + 5)
            })
            store.splitter.testing.scanLimit.store(middle, ordering: .relaxed)
            await store.splitter.checkpointForTesting()
            #expect(store.stats().checkpointPosition == middle, "\(kind.name)")
            let ringFirst = store.journal.writer.state.withLock { $0.index.streams[kind.name]?.ringFirstVersion }
            #expect(ringFirst == first.firstVersion + 5, "\(kind.name): the append is split by the checkpoint")

            let retry = try await store.append(to: kind.name, expectedVersion: kind.expected, events: events)
            #expect(retry == first, "\(kind.name)")
            var changed = events
            changed[7] = event("other")
            let error = await ringstoreError { try await store.append(to: kind.name, expectedVersion: kind.expected, events: changed) }
            let refusal: RingstoreError.Code = switch kind.expected {
            case .any, .streamExists: .idempotencyConflict
            default: .wrongExpectedVersion
            }
            #expect(error?.code == refusal, "\(kind.name)")
            changed = events
            changed[2] = event("other")  // in the part already in the stream file
            let early = await ringstoreError { try await store.append(to: kind.name, expectedVersion: kind.expected, events: changed) }
            #expect(early?.code == refusal, "\(kind.name)")
        }
        store.splitter.testing.scanLimit.store(.max, ordering: .relaxed)
        for kind in Self.kinds {
            let stored = try await store.read(stream: kind.name).collect()
            #expect(stored.count == (kind.seed ? 11 : 10), "\(kind.name): nothing written twice")
        }
        try await store.close()
    }
}
