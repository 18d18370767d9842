import Foundation
import Ringstore
import Synchronization

/// What a chain of power-loss rounds expects of its store.
///
/// `confirmed`: per stream, the event IDs the last verification found, in
/// version order. They were read back after a reopen, and reopening makes
/// everything it recovered durable, so every later cut must keep them.
/// `attempts`: the appends of the round since, acknowledged or not.
public struct PowerLossLedger: Sendable {
    public var confirmed: [String: [UUID]] = [:]
    public var attempts: [PowerLossAttempt] = []
    /// The tombstones of the round since, acknowledged or not.
    public var tombstones: [PowerLossTombstone] = []
    /// Streams the verifications found tombstoned: every later cut must keep them so.
    public var deleted: Set<String> = []
    /// The journal's durable cursor when the power was cut: in relaxed mode,
    /// an acknowledged append that ends before it must survive.
    public var durableAtCut: UInt64 = 0
    /// When the round learned of the cut (relaxed mode reports how old a lost event was).
    public var cutAt: ContinuousClock.Instant?

    public init() {}
}

/// One append of a round.
public struct PowerLossAttempt: Sendable {
    public var stream: String
    public var events: [EventData]
    public var expected: ExpectedVersion
    /// Set once acknowledged; nil if it failed or never returned.
    public var result: AppendResult?
    public var acknowledgedAt: ContinuousClock.Instant?
}

/// One hard delete of a round.
public struct PowerLossTombstone: Sendable {
    public var stream: String
    public var acknowledged = false
    /// The journal's written cursor when it was acknowledged: the tombstone
    /// ends at or before it (relaxed mode may lose it only if that is past the
    /// durable cursor at the cut).
    public var writtenWhenAcknowledged: UInt64 = 0
}

/// The round's attempts, recorded by concurrent writers: each is registered
/// before its append is sent, so one that never returns is still known.
public final class PowerLossRecorder: Sendable {
    private let attempts = Mutex<[PowerLossAttempt]>([])
    private let tombstoneAttempts = Mutex<[PowerLossTombstone]>([])
    private let acknowledgedAppends = Atomic<Int>(0)
    private let waiter = Mutex<(target: UInt64, continuation: CheckedContinuation<Void, Never>?)>((.max, nil))

    public init() {}

    /// Registers an append about to be sent; returns its number.
    public func begin(stream: String, events: [EventData], expected: ExpectedVersion) -> Int {
        attempts.withLock { list in
            list.append(PowerLossAttempt(stream: stream, events: events, expected: expected))
            return list.count - 1
        }
    }

    public func acknowledged(_ number: Int, _ result: AppendResult) {
        let now = ContinuousClock.now
        attempts.withLock { list in
            list[number].result = result
            list[number].acknowledgedAt = now
        }
        acknowledgedAppends.add(1, ordering: .relaxed)
        let reached = result.lastPosition
        let continuation: CheckedContinuation<Void, Never>? = waiter.withLock { w in
            guard reached >= w.target, let c = w.continuation else { return nil }
            w = (.max, nil)
            return c
        }
        continuation?.resume()
    }

    /// Waits until an acknowledged append ends at or past journal position `position`.
    public func waitForAcknowledgement(past position: UInt64) async {
        let reached = attempts.withLock { list in list.contains { ($0.result?.lastPosition ?? 0) >= position } }
        if reached { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let already = waiter.withLock { w -> Bool in
                let reached = attempts.withLock { list in list.contains { ($0.result?.lastPosition ?? 0) >= position } }
                if reached { return true }
                w = (position, continuation)
                return false
            }
            if already { continuation.resume() }
        }
    }

    /// Wakes a ``waitForAcknowledgement(past:)`` that can no longer be satisfied (the round is ending).
    public func cancelWait() {
        let continuation = waiter.withLock { w in
            defer { w = (.max, nil) }
            return w.continuation
        }
        continuation?.resume()
    }

    /// Appends acknowledged so far: how a round tells a slow workload (on a
    /// loaded machine) from one that makes no progress.
    public var acknowledgedCount: Int { acknowledgedAppends.load(ordering: .relaxed) }

    public var all: [PowerLossAttempt] { attempts.withLock { $0 } }

    /// Registers a hard delete about to be sent; returns its number.
    public func beginTombstone(of stream: String) -> Int {
        tombstoneAttempts.withLock { list in
            list.append(PowerLossTombstone(stream: stream))
            return list.count - 1
        }
    }

    public func tombstoneAcknowledged(_ number: Int, written: UInt64) {
        tombstoneAttempts.withLock {
            $0[number].acknowledged = true
            $0[number].writtenWhenAcknowledged = written
        }
    }

    public var tombstones: [PowerLossTombstone] { tombstoneAttempts.withLock { $0 } }
}
