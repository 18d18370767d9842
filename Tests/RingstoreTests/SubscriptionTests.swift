import Foundation
import Testing
@testable import Ringstore

@Suite struct SubscriptionTests {
    @Test func streamSubscriptionCatchesUpThenGoesLiveWithoutGapsOrDuplicates() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<700 { try await store.append(to: "sub", events: [event("\(i)")]) }  // more than a page to catch up on
        let subscription = try store.subscribe(to: "sub")
        let reader = Task {
            var versions: [UInt64] = []
            for try await event in subscription {
                versions.append(event.version)
                if versions.count == 1500 { break }
            }
            return versions
        }
        // Keep appending while the subscriber switches from catch-up to live.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for i in 0..<200 { try await store.append(to: "sub", events: [event("w\(writer)-\(i)"), event("w\(writer)-\(i)b")]) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await reader.value == Array(0..<1500))
        try await store.close()
    }

    @Test func allSubscriptionWithFiltersSeesEveryMatchingEventOnceInOrder() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<100 { try await store.append(to: i % 2 == 0 ? "order-\(i % 5)" : "user-\(i % 5)", events: [event("\(i)", type: i % 3 == 0 ? "Created" : "Updated")]) }
        let everything = try store.subscribeToAll()
        let orders = try store.subscribeToAll(filter: .streamPrefix("order-"))
        let created = try store.subscribeToAll(filter: .eventTypes(["Created"]))
        func take(_ subscription: Subscription, _ count: Int) async throws -> [RecordedEvent] {
            var events: [RecordedEvent] = []
            for try await event in subscription {
                events.append(event)
                if events.count == count { break }
            }
            return events
        }
        let allTask = Task { try await take(everything, 300) }
        let ordersTask = Task { try await take(orders, 150) }
        let createdTask = Task { try await take(created, 100) }
        for i in 100..<300 { try await store.append(to: i % 2 == 0 ? "order-\(i % 5)" : "user-\(i % 5)", events: [event("\(i)", type: i % 3 == 0 ? "Created" : "Updated")]) }
        let all = try await allTask.value
        #expect(all.map(text) == (0..<300).map { "{\"v\":\"\($0)\"}" })
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.position < $1.position })
        let orderEvents = try await ordersTask.value
        #expect(orderEvents.allSatisfy { $0.stream.hasPrefix("order-") } && orderEvents.map(text) == all.filter { $0.stream.hasPrefix("order-") }.map(text))
        let createdEvents = try await createdTask.value
        #expect(createdEvents.map(text) == all.filter { $0.type == "Created" }.map(text))
        try await store.close()
    }

    @Test func subscribingFromTheEndDeliversOnlyNewEvents() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<10 { try await store.append(to: "s", events: [event("old \(i)")]) }
        let stream = try store.subscribe(to: "s", from: .end)
        let all = try store.subscribeToAll(from: .end)
        let streamTask = Task { () -> RecordedEvent? in for try await e in stream { return e }; return nil }
        let allTask = Task { () -> RecordedEvent? in for try await e in all { return e }; return nil }
        // Where they start was fixed when they were made: the new event comes after it,
        // whenever the tasks get to run.
        try await store.append(to: "s", events: [event("new")])
        #expect(try await streamTask.value.map(text) == "{\"v\":\"new\"}")
        #expect(try await allTask.value.map(text) == "{\"v\":\"new\"}")
        try await store.close()
    }

    /// Nothing else wakes these subscribers: without working cancellation and
    /// close they would wait forever, which the time limit turns into a failure.
    @Test(.timeLimit(.minutes(1))) func cancellationAndClosingEndSubscriptionsPromptly() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let changes = store.journal.writer.acknowledger.changes
        let waiting = Task { () -> Int in
            var count = 0
            for try await _ in try store.subscribe(to: "quiet") { count += 1 }
            return count
        }
        // Cancelled while it waits for appends (nothing else would ever wake it).
        try await waitUntil("the subscriber to wait for appends") { changes.waiterCount == 1 }
        waiting.cancel()
        #expect(try await waiting.value == 0)

        let received = Counter()
        let live = Task { () -> Int in
            for try await _ in try store.subscribeToAll() { received.add() }
            return received.value
        }
        try await store.append(to: "x", events: [event("1")])
        // Closed while it waits for more, having delivered the one event.
        try await waitUntil("the subscriber to receive the event and wait for more") { received.value == 1 && changes.waiterCount == 1 }
        try await store.close()
        #expect(try await live.value == 1)
    }

    @Test func aSubscriberThatDoesNotReadHoldsNothingBack() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 256 << 10))
        let idle = try store.subscribeToAll()
        var iterator = idle.makeAsyncIterator()
        _ = try await Task { try await store.append(to: "a", events: [event("first")]) }.value
        #expect(try await iterator.next().map(text) == "{\"v\":\"first\"}")
        // The subscriber stops reading; appends go on through many laps of the ring.
        for i in 0..<3000 { try await store.append(to: "a", events: [EventData(type: "T", data: [UInt8](repeating: UInt8(i % 200), count: 300))]) }
        #expect(store.stats().checkpointPosition > 2 * store.stats().journalCapacity)
        // It then catches up from where it was, from the stream files.
        var count = 1
        while count < 3001, let _ = try await iterator.next() { count += 1 }
        #expect(count == 3001)
        try await store.close()
    }
}
