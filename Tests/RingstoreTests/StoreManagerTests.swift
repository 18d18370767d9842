import Foundation
import Testing
@testable import Ringstore

@Suite struct StoreManagerTests {
    @Test func twoStoresOpenAtOnceKeepTheirOwnEvents() async throws {
        let dir = TemporaryDirectory()
        let manager = try StoreManager(root: dir.child("stores"), configuration: .testing())
        let orders = try await manager.open("orders")
        let users = try await manager.open("users")
        #expect(try await manager.open("orders") === orders, "opening an open store returns it")
        try await orders.append(to: "s", events: [event("order")])
        try await users.append(to: "s", events: [event("user 1"), event("user 2")])
        #expect(try await orders.read(stream: "s").collect().map(text) == ["{\"v\":\"order\"}"])
        #expect(try await users.read(stream: "s").collect().count == 2)
        #expect(orders.directory != users.directory)
        #expect(FileManager.default.fileExists(atPath: dir.child("stores/orders/journal.ring")))
        #expect(FileManager.default.fileExists(atPath: dir.child("stores/users/journal.ring")))

        try await manager.close("orders")
        #expect(await manager.store(named: "orders") == nil)
        #expect(await manager.store(named: "users") === users)
        #expect(try await manager.list() == [
            .init(name: "orders", path: dir.child("stores/orders"), isOpen: false),
            .init(name: "users", path: dir.child("stores/users"), isOpen: true),
        ])
        #expect(await ringstoreError { try await manager.close("orders") }?.code == .storeNotFound)

        // Reopened (by another manager, after closing all): the data is there.
        try await manager.closeAll()
        #expect(try await manager.list().allSatisfy { !$0.isOpen })
        let again = try StoreManager(root: dir.child("stores"), configuration: .testing())
        let reopened = try await again.open("orders", create: false)
        #expect(try await reopened.read(stream: "s").collect().count == 1)
        try await again.closeAll()
    }

    @Test func concurrentOpensOfOneNameShareOneStore() async throws {
        let dir = TemporaryDirectory()
        let manager = try StoreManager(root: dir.path, configuration: .testing())
        let stores = try await withThrowingTaskGroup(of: EventStore.self) { group in
            for _ in 0..<8 { group.addTask { try await manager.open("shared") } }
            return try await group.reduce(into: [EventStore]()) { $0.append($1) }
        }
        #expect(stores.allSatisfy { $0 === stores[0] })
        try await manager.closeAll()
    }

    @Test func badNamesAndMissingStoresGetClearErrors() async throws {
        let dir = TemporaryDirectory()
        let manager = try StoreManager(root: dir.path, configuration: .testing())
        for bad in ["", "..", "../x", "a/b", ".hidden", "sp ace", "naïve", String(repeating: "x", count: 129)] {
            let error = await ringstoreError { _ = try await manager.open(bad) }
            #expect(error?.code == .invalidArgument, "\(bad)")
            #expect(error?.message.contains("store name") == true)
        }
        #expect(await ringstoreError { _ = try await manager.open("absent", create: false) }?.code == .storeNotFound)
        #expect(try await manager.list().isEmpty)
        #expect(await ringstoreError { _ = try StoreManager(root: dir.child("no/such/parent")) }?.code == .invalidArgument)
        // Another process (here: a store opened directly) holding a store's lock.
        let direct = try await EventStore.open(at: dir.child("taken"), configuration: .testing())
        #expect(await ringstoreError { _ = try await manager.open("taken") }?.code == .storeLocked)
        try await direct.close()
        #expect(try await manager.list().map(\.name) == ["taken"])
    }
}
