import Foundation
import Ringstore
import Synchronization

/// Live `$all` subscribers running beside the workload (Ringstore only, with
/// `--subscribers`): how many events they receive per second, and how long
/// after an append is acknowledged its last event reaches them.
///
/// Latency is sampled (appends whose last event's position falls in one of 61
/// position slots) so the bookkeeping stays small. The subscriber can see an
/// event before the writer has noted its acknowledgement (both follow the same
/// cursor); such a delivery counts as latency zero.
public final class SubscriptionProbe: Sendable {
    private struct Pending: ~Copyable {
        var acknowledged: [UInt64: ContinuousClock.Instant] = [:]
        var deliveredEarly: Set<UInt64> = []
        var latencies = LatencyRecorder()
    }

    private let pending = Mutex(Pending())
    private let delivered = Atomic<Int>(0)
    /// Off until subscribers start: acknowledgements cost one atomic load then.
    private let active = Atomic<Bool>(false)

    public init() {}

    @inline(__always)
    static func sampled(_ position: UInt64) -> Bool { (position >> 3) % 61 == 0 }

    /// A writer's append whose last event is at `lastPosition` was just acknowledged.
    func acknowledged(lastPosition: UInt64) {
        guard Self.sampled(lastPosition), active.load(ordering: .relaxed) else { return }
        let now = ContinuousClock.now
        pending.withLock { p in
            if p.deliveredEarly.remove(lastPosition) != nil {
                p.latencies.record(.zero)
            } else {
                p.acknowledged[lastPosition] = now
            }
        }
    }

    /// The first subscriber received the event at `position`.
    func received(position: UInt64) {
        guard Self.sampled(position) else { return }
        let now = ContinuousClock.now
        pending.withLock { p in
            if let acknowledged = p.acknowledged.removeValue(forKey: position) {
                p.latencies.record(now - acknowledged)
            } else {
                p.deliveredEarly.insert(position)
            }
        }
    }

    /// Runs `count` `$all` subscriptions from the store's newest event until
    /// cancelled; the first one feeds the latency sample.
    func start(_ count: Int, on store: EventStore) throws -> [Task<Void, Never>] {
        active.store(true, ordering: .relaxed)
        return try (0..<count).map { index in
            let subscription = try store.subscribeToAll(from: .end)
            return Task {
                do {
                    for try await event in subscription {
                        delivered.add(1, ordering: .relaxed)
                        if index == 0 { received(position: event.position) }
                    }
                } catch {}
            }
        }
    }

    /// Events delivered so far, over all subscribers.
    var eventsDelivered: Int { delivered.load(ordering: .relaxed) }

    var latencies: LatencyRecorder { pending.withLock { $0.latencies } }
}

/// What the live subscribers saw (with `--subscribers`).
public struct SubscriptionResult: Sendable, Codable, Hashable {
    public var subscribers: Int
    /// Events delivered to each subscriber per second during the ingest (on average).
    public var eventsPerSecondPerSubscriber: Double
    /// Events delivered to all subscribers by the end (the ingest's, plus the one
    /// each starts from, the store's newest event when it subscribed).
    public var eventsDelivered: Int
    /// From an append's acknowledgement to its delivery to a subscriber (sampled).
    public var liveLatencyMs: SystemResult.Latency
    public var latencySamples: Int
}
