import Foundation
import Testing
@testable import Ringstore

@Suite struct IdempotencyWindowTests {
    /// What the window must answer: each first ID maps to the newest append that
    /// remembered it, for as long as that append is among the last `capacity`.
    struct Model {
        let capacity: Int
        var order: [UUID] = []
        var newest: [UUID: (index: Int, entry: IdempotencyWindow.Entry)] = [:]

        mutating func remember(_ id: UUID, _ entry: IdempotencyWindow.Entry) {
            guard capacity > 0 else { return }
            let index = order.count
            order.append(id)
            newest[id] = (index, entry)
            if order.count > capacity {
                let leaving = order.count - 1 - capacity
                let old = order[leaving]
                if newest[old]?.index == leaving { newest[old] = nil }
            }
        }
    }

    static func entry(_ n: Int) -> IdempotencyWindow.Entry {
        .init(stream: "stream-\(n % 97)", firstVersion: UInt64(n), count: n % 5 + 1)
    }

    /// Random IDs, the store's own IDs (one random half, one mixed counter) and
    /// reused IDs, through many laps of windows of several sizes: every lookup
    /// agrees with the model, including IDs that left the window.
    @Test(arguments: [1, 2, 7, 64, 1_000])
    func answersLikeTheModel(capacity: Int) {
        var window = IdempotencyWindow(capacity: capacity)
        var model = Model(capacity: capacity)
        var random = SystemRandomNumberGenerator()
        var seen: [UUID] = []
        for n in 0..<(capacity * 12 + 50) {
            let id: UUID
            switch random.next() % 4 {
            case 0: id = UUID()
            case 1, 2: id = .newEventID()
            default: id = seen.isEmpty ? UUID() : seen[Int(random.next() % UInt64(seen.count))]  // a reused first ID
            }
            seen.append(id)
            window.remember(id, Self.entry(n))
            model.remember(id, Self.entry(n))
            #expect(window.count == model.newest.count)
            if n % 53 == 0 || n > capacity * 12 {
                for probe in seen.suffix(3 * capacity + 3) {
                    let expected = model.newest[probe]?.entry
                    let found = window.lookup(probe)
                    #expect(found?.stream == expected?.stream && found?.firstVersion == expected?.firstVersion
                        && found?.count == expected?.count, "capacity \(capacity), after \(n + 1) appends")
                }
            }
        }
    }

    /// An ID remembered a second time while still in the window (an `.exact`
    /// append may reuse one) stays found, as the newer append, until that append
    /// leaves the window. (The dictionary it replaced forgot it as soon as the
    /// older append left, so a retry of the newer one with `.any` was not
    /// recognised.)
    @Test func aReusedFirstIDLastsAsLongAsItsNewestAppend() {
        var window = IdempotencyWindow(capacity: 4)
        let reused = UUID()
        window.remember(reused, Self.entry(1))
        window.remember(UUID(), Self.entry(2))
        window.remember(reused, Self.entry(3))
        window.remember(UUID(), Self.entry(4))
        window.remember(UUID(), Self.entry(5))  // the first append leaves
        #expect(window.lookup(reused)?.firstVersion == 3)
        window.remember(UUID(), Self.entry(6))
        window.remember(UUID(), Self.entry(7))  // the third leaves
        #expect(window.lookup(reused) == nil)
        #expect(window.count == 4)
    }

    @Test func aWindowOfNothingRemembersNothing() {
        var window = IdempotencyWindow(capacity: 0)
        let id = UUID()
        window.remember(id, Self.entry(1))
        #expect(window.lookup(id) == nil && window.count == 0)
    }
}
