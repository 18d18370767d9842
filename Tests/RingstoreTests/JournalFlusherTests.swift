import Foundation
import Synchronization
import Testing
@testable import Ringstore

/// Whether `body` finishes within `limit`. If it does not, it is left running
/// (a hung append cannot be cancelled); closing the store ends it.
func finishes(within limit: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    final class Once: Sendable {
        let claimed = Atomic<Bool>(false)
        func claim() -> Bool { !claimed.exchange(true, ordering: .acquiringAndReleasing) }
    }
    let once = Once()
    return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
        let timer = Task {
            // Cancelled: the body finished (and claimed first). Claiming here after a
            // cancelled sleep raced the body's claim and could report a finished body as late.
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            if once.claim() { continuation.resume(returning: false) }
        }
        Task {
            await body()
            if once.claim() { continuation.resume(returning: true) }
            timer.cancel()
        }
    }
}

/// The flusher's idle/wake protocol and the ring's sync-error protocol, under
/// injected write and flush failures.
@Suite struct JournalFlusherTests {
    /// After failed ring writes, the flusher writes the batch again; when that
    /// succeeds and the sync is due at once (no flush delay; or relaxed with the
    /// interval passed), it used to go to sleep without telling appends to wake
    /// it, and every later append waited for good.
    @Test(arguments: [
        (Configuration.Durability.durable(maxFlushDelay: .zero), 1),
        (.durable(maxFlushDelay: .zero), 3),
        (.relaxed(flushInterval: .nanoseconds(1)), 1),
        (.relaxed(flushInterval: .nanoseconds(1)), 3),
        (.durable, 2),
    ])
    func appendsCompleteAfterFailedRingWrites(durability: Configuration.Durability, failures: Int) async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(durability: durability))
        store.splitter.pause()
        let journal = dir.child(Journal.fileName)
        let token = FaultInjection.install(.init(operation: .write, pathContains: journal, effect: .fail(.ioError), count: failures))
        defer { FaultInjection.remove(token) }
        let failed = event("failed")
        let error = await ringstoreError { try await store.append(to: "w", events: [failed]) }
        #expect(error?.code == .ioError)

        // Staged while the flusher retries (or after): it must be written and acknowledged.
        let next = event("next")
        let nextDone = await finishes(within: .seconds(30)) {
            do { try await store.append(to: "w", events: [next]) } catch { Issue.record("append after the failed writes: \(error)") }
        }
        #expect(nextDone, "an append after \(failures) failed ring write(s) never completed")
        let later = event("later")
        let laterDone = await finishes(within: .seconds(30)) {
            do { try await store.append(to: "w", events: [later]) } catch { Issue.record("a later append: \(error)") }
        }
        #expect(laterDone, "a later append never completed")
        store.splitter.resume()
        try await store.close()

        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        let stored = try await reopened.read(stream: "w").collect().map(\.id)
        #expect(stored == [failed.id, next.id, later.id], "the failed batch was written again before anything newer")
        try await reopened.close()
    }

    /// The checkpoint's header write syncs the ring's descriptor too. Linux
    /// reports a writeback error once per open file: when the header's
    /// `fdatasync` is the one that sees it, the ring's unflushed range must be
    /// written again before the next sync may move the durable cursor, exactly
    /// as after a failed flush of the flusher's own.
    @Test(arguments: [Configuration.Durability.durable, .relaxed(flushInterval: .seconds(3600))])
    func aRingSyncErrorSeenByAHeaderWriteIsRepairedBeforeAnythingMoreCountsAsDurable(durability: Configuration.Durability) async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(durability: durability))
        store.splitter.pause()  // the test writes the one header itself
        let first = event("first")
        try await store.append(to: "h", events: [first])
        try await store.flush()
        let durableBefore = store.stats().durablePosition
        let relaxed = if case .relaxed = durability { true } else { false }
        let second = event("second")
        // Relaxed: acknowledged once written; its pages are not yet flushed when the header write fails.
        if relaxed { try await store.append(to: "h", events: [second]) }
        let rewritesBefore = store.journal.writer.ringSync.rewriteCount.load(ordering: .relaxed)

        await withFault(.flush, on: dir.child(Journal.fileName), .fail(.ioError), count: 1) { _ in
            let error = #expect(throws: RingstoreError.self) {
                try store.journal.advanceCheckpoint(to: durableBefore, streams: [String]())
            }
            #expect(error?.code == .ioError)
        }
        #expect(store.stats().checkpointPosition == 0, "a checkpoint whose header was not made durable does not count")

        if !relaxed { try await store.append(to: "h", events: [second]) }
        try await store.flush()
        #expect(store.journal.writer.ringSync.rewriteCount.load(ordering: .relaxed) > rewritesBefore,
                "the sync after the header's failed one wrote the unflushed range again first")
        #expect(store.stats().durablePosition == store.stats().writtenPosition)

        store.splitter.resume()
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await reopened.read(stream: "h").collect().map(\.id) == [first.id, second.id])
        try await reopened.close()
    }
}
