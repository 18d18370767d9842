import Dispatch
import Foundation
import Testing
@testable import Ringstore

/// Who resumes acknowledged appends: the flusher itself for a small batch
/// while the acknowledger's thread is idle, the thread otherwise, and never
/// out of order with what was handed to the thread before.
@Suite struct AcknowledgerTests {
    /// Appends parked on continuations, handed out as waiters once all have arrived.
    /// (The library's pthread `Mutex`, which ThreadSanitizer sees, not
    /// `Synchronization.Mutex`: this suite runs under it in CI.)
    final class ParkedAppends: Sendable {
        private let waiters = Ringstore.Mutex<[JournalWriter.Waiter]>([])
        private let log = Ringstore.Mutex<[String]>([])

        /// Records that something happened, in the order it happened.
        func note(_ entry: String) { log.withLock { $0.append(entry) } }
        var entries: [String] { log.withLock { $0 } }

        /// Starts `count` tasks that each wait for an acknowledgement; returns them.
        func park(_ count: Int) -> [Task<AppendResult, any Error>] {
            (0..<count).map { i in
                Task {
                    let outcome = try await withUnsafeThrowingContinuation { continuation in
                        let result = AppendResult(firstVersion: UInt64(i), lastVersion: UInt64(i),
                                                  firstPosition: UInt64(i * 100), lastPosition: UInt64(i * 100))
                        waiters.withLock { $0.append(JournalWriter.Waiter(lastPosition: UInt64(i * 100), result: result, continuation: continuation)) }
                    }
                    guard case .appended(let result) = outcome else { throw CancellationError() }
                    note("resumed")
                    return result
                }
            }
        }

        /// The waiters, once `count` tasks have parked (a readiness wait, not a sleep).
        func waiters(_ count: Int) async -> [JournalWriter.Waiter] {
            while waiters.withLock({ $0.count }) < count { await Task.yield() }
            return waiters.withLock { $0 }
        }
    }

    private func idle(_ acknowledger: Acknowledger) async {
        while !acknowledger.isIdle { await Task.yield() }
    }

    private func expectResumed(_ tasks: [Task<AppendResult, any Error>]) async throws {
        for (i, task) in tasks.enumerated() {
            let result = try await task.value
            #expect(result.firstVersion == UInt64(i) && result.lastPosition == UInt64(i * 100))
        }
    }

    @Test func aSmallBatchIsResumedByTheCallerWhileTheThreadIsIdle() async throws {
        let acknowledger = try Acknowledger(owner: "acknowledger-test-\(UUID())")
        defer { acknowledger.finishAndWait() }
        let parked = ParkedAppends()
        let tasks = parked.park(Acknowledger.inlineLimit)
        let waiters = await parked.waiters(tasks.count)
        await idle(acknowledger)
        acknowledger.acknowledge(waiters)
        #expect(acknowledger.inlineBatches.load(ordering: .relaxed) == 1)
        // Counted before `acknowledge` returned, as `stats()` expects.
        #expect(acknowledger.appendCount.load(ordering: .relaxed) == UInt64(tasks.count))
        try await expectResumed(tasks)
    }

    @Test func aLargeBatchGoesToTheThread() async throws {
        let acknowledger = try Acknowledger(owner: "acknowledger-test-\(UUID())")
        defer { acknowledger.finishAndWait() }
        let parked = ParkedAppends()
        let tasks = parked.park(Acknowledger.inlineLimit + 1)
        let waiters = await parked.waiters(tasks.count)
        await idle(acknowledger)
        acknowledger.acknowledge(waiters)
        try await expectResumed(tasks)
        #expect(acknowledger.inlineBatches.load(ordering: .relaxed) == 0)
        #expect(acknowledger.appendCount.load(ordering: .relaxed) == UInt64(tasks.count))
    }

    /// A small batch acknowledged while the thread still works on an earlier
    /// item is handed over behind it, not resumed ahead of it.
    @Test func aSmallBatchWaitsBehindWhatTheThreadHasNotFinished() async throws {
        let acknowledger = try Acknowledger(owner: "acknowledger-test-\(UUID())")
        defer { acknowledger.finishAndWait() }
        let parked = ParkedAppends()
        let tasks = parked.park(3)
        let waiters = await parked.waiters(tasks.count)
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        acknowledger.submit(.notify {
            started.signal()
            release.wait()
            parked.note("earlier item")
        })
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { started.wait(); done.resume() }
        }
        acknowledger.acknowledge(waiters)
        #expect(acknowledger.inlineBatches.load(ordering: .relaxed) == 0)
        release.signal()
        try await expectResumed(tasks)
        #expect(parked.entries == ["earlier item", "resumed", "resumed", "resumed"])
    }
}
