import Foundation
import Testing
@testable import Ringstore

@Suite struct AppendReadTests {
    @Test func appendThenReadBackByStreamAndAll() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let first = try await store.append(to: "orders-1", events: [event("a"), event("b")])
        #expect(first.firstVersion == 0 && first.lastVersion == 1)
        let second = try await store.append(to: "orders-2", events: [event("c")])
        #expect(second.firstVersion == 0)
        #expect(second.firstPosition > first.lastPosition)
        let third = try await store.append(to: "orders-1", expectedVersion: .exact(1), events: [event("d")])
        #expect(third.firstVersion == 2)

        let stream = try await store.read(stream: "orders-1").collect()
        #expect(stream.map(text) == ["{\"v\":\"a\"}", "{\"v\":\"b\"}", "{\"v\":\"d\"}"])
        #expect(stream.map(\.version) == [0, 1, 2])
        #expect(stream.allSatisfy { $0.stream == "orders-1" && $0.type == "Test" && $0.contentType == .json })

        let backwards = try await store.read(stream: "orders-1", from: .end, direction: .backwards).collect()
        #expect(backwards.map(\.version) == [2, 1, 0])
        let fromOne = try await store.read(stream: "orders-1", from: .version(1), maxCount: 1).collect()
        #expect(fromOne.map(\.version) == [1])

        let all = try await store.readAll().collect()
        #expect(all.map(\.stream) == ["orders-1", "orders-1", "orders-2", "orders-1"])
        #expect(all.map(\.position) == all.map(\.position).sorted())
        let allBack = try await store.readAll(from: .end, direction: .backwards, maxCount: 2).collect()
        #expect(allBack.map(\.position) == Array(all.map(\.position).reversed().prefix(2)))
        let allFrom = try await store.readAll(from: .position(second.firstPosition)).collect()
        #expect(allFrom.map(\.position) == [second.firstPosition, third.firstPosition])
        try await store.close()
    }

    @Test func eventsSurviveCloseAndReopen() async throws {
        let dir = TemporaryDirectory()
        var ids: [UUID] = []
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            for i in 0..<50 {
                let e = EventData(type: "Numbered", data: Array("\(i)".utf8), metadata: [1, 2, 3], contentType: .binary)
                ids.append(e.id)
                try await store.append(to: "s-\(i % 5)", events: [e])
            }
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let all = try await store.readAll().collect()
        #expect(all.map(\.id) == ids)
        #expect(all.allSatisfy { $0.metadata == [1, 2, 3] && $0.contentType == .binary })
        #expect(store.stats().recoveredEvents == 0, "a clean close copies everything into stream files")
        let next = try await store.append(to: "s-0", expectedVersion: .exact(9), events: [event("x")])
        #expect(next.firstVersion == 10)
        try await store.close()
    }

    @Test func readingAMissingStreamThrowsStreamNotFound() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let error = await ringstoreError { _ = try await store.read(stream: "nope").collect() }
        #expect(error?.code == .streamNotFound)
        #expect(error?.stream == "nope")
        try await store.close()
    }

    @Test func relaxedModeAcknowledgesAndPersistsOnClose() async throws {
        let dir = TemporaryDirectory()
        let config = Configuration.testing(durability: .relaxed(flushInterval: .seconds(60)))
        do {
            let store = try await EventStore.open(at: dir.path, configuration: config)
            for i in 0..<20 { try await store.append(to: "r", events: [event("\(i)")]) }
            #expect(try await store.read(stream: "r").collect().count == 20)
            try await store.flush()
            #expect(store.stats().durablePosition == store.stats().writtenPosition)
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: config)
        #expect(try await store.read(stream: "r").collect().count == 20)
        try await store.close()
    }

    @Test func closedStoreRejectsCalls() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.close()
        try await store.close()
        let error = await ringstoreError { try await store.append(to: "a", events: [event("x")]) }
        #expect(error?.code == .storeClosed)
        #expect(await ringstoreError { _ = try await store.read(stream: "a").collect() }?.code == .storeClosed)
        #expect(await ringstoreError { _ = try await store.readAll().collect() }?.code == .storeClosed)
        #expect(await ringstoreError { _ = try store.subscribeToAll() }?.code == .storeClosed)
    }

    /// A close called while another is under way (a signal handler's, say)
    /// returns only once the store is closed: the lock released, the close
    /// recorded, so that whoever exits next leaves a cleanly closed store.
    @Test func aSecondCloseReturnsOnlyOnceTheFirstHasFinished() async throws {
        let dir = TemporaryDirectory()
        for round in 0..<5 {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            for i in 0..<200 { try await store.append(to: "s-\(i)", events: [event("e\(round)")]) }
            let first = Task { try await store.close() }
            try await waitUntil("the first close to begin") { store.isClosed }
            try await store.close()  // during the first one, or after it
            let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
            #expect(reopened.stats().recoveredEvents == 0, "round \(round): reopened a store that was not closed cleanly")
            try await reopened.close()
            try await first.value
        }
    }

    /// Closing releases the stream files' descriptors then, not when the last
    /// reference to the store goes: a program that keeps a closed store (or
    /// opens many in turn) held up to the open-file bound of them per store,
    /// and on a file system with online discard their blocks were only freed
    /// at exit.
    @Test func closingReleasesTheStreamFilesDescriptors() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        // 20 KB each: past the size that sends a stream straight to its own file.
        let payload = String(repeating: "x", count: 20_000)
        for i in 0..<8 { try await store.append(to: "s-\(i)", events: [event(payload + "\(i)")]) }
        try await waitUntil("the stream files to be written") { openDescriptors(under: dir.child("streams")).count >= 8 }
        try await store.close()
        #expect(openDescriptors(under: dir.child("streams")) == [], "stream files still open after close")
        withExtendedLifetime(store) {}
    }
}
