import Logging
import Ringstore
import ServiceLifecycle
import Synchronization

/// The server's stores: opens every store under the data folder when the server
/// starts, answers lookups by name without a hop through the ``StoreManager``
/// actor, creates stores on request, and closes them all (each with a flush, the
/// split finished and a checkpoint written) when the server stops.
///
/// A `Service` run after the HTTP server in the same service group, so it is
/// shut down after it: by the time stores close, the server has stopped
/// accepting connections and finished the requests in flight.
public final class StoreService: Service, Sendable {
    /// Where a store lookup stands.
    enum Lookup {
        case store(EventStore)
        case notReady
        case notFound
    }

    let manager: StoreManager
    private let logger: Logger
    private let beforeOpening: (@Sendable () async -> Void)?
    private let state = Mutex<State>(State())

    private struct State {
        var ready = false
        var failed = false
        var closing = false
        var stores: [String: EventStore] = [:]
        var readyWaiters: [CheckedContinuation<Void, Never>] = []
    }

    init(manager: StoreManager, logger: Logger, beforeOpening: (@Sendable () async -> Void)? = nil) {
        self.manager = manager
        self.logger = logger
        self.beforeOpening = beforeOpening
    }

    /// True once every store found at start has been opened (recovery finished), until shutdown begins.
    var isReady: Bool { state.withLock { $0.ready && !$0.closing } }

    /// True once the stores found at start have been opened (even if closing since).
    var hasStarted: Bool { state.withLock { $0.ready } }

    private func releaseWaiters(ready: Bool) {
        let waiters = state.withLock { s in
            s.ready = ready
            s.failed = !ready
            defer { s.readyWaiters = [] }
            return s.readyWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until the stores found at start are open, or opening one failed.
    func waitUntilReady() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { s in
                if s.ready || s.failed { return true }
                s.readyWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func lookup(_ name: String) -> Lookup {
        state.withLock { s in
            guard s.ready, !s.closing else { return .notReady }
            return s.stores[name].map { .store($0) } ?? .notFound
        }
    }

    /// Opens or creates `name`; returns the store and whether it was created.
    func create(_ name: String) async throws -> (EventStore, created: Bool) {
        try StoreManager.validateName(name)
        if case .store(let store) = lookup(name) { return (store, false) }
        guard isReady else { throw APIError.notReady(retryAfter: 1) }
        let existed = try await manager.list().contains { $0.name == name }
        let store = try await manager.open(name)
        let closing = state.withLock { s in
            if !s.closing { s.stores[name] = store }
            return s.closing
        }
        if closing { throw APIError.notReady(retryAfter: 1) }
        logger.info("store ready", metadata: ["store": "\(name)", "created": "\(!existed)"])
        return (store, !existed)
    }

    /// Names of the open stores, sorted.
    var storeNames: [String] { state.withLock { $0.stores.keys.sorted() } }

    public func run() async throws {
        await beforeOpening?()
        do {
            for info in try await manager.list() {
                let store = try await manager.open(info.name, create: false)
                state.withLock { $0.stores[info.name] = store }
                let stats = store.stats()
                logger.info("store opened", metadata: ["store": "\(info.name)", "recoveredEvents": "\(stats.recoveredEvents)"])
            }
        } catch {
            // Waiters learn it failed (not ready) rather than waiting for ever; the service group stops.
            releaseWaiters(ready: false)
            try? await manager.closeAll()
            throw error
        }
        releaseWaiters(ready: true)
        // Until the service group shuts down (after the HTTP server has finished).
        try? await gracefulShutdown()
        state.withLock { $0.closing = true }
        logger.info("closing stores")
        try await manager.closeAll()
        logger.info("stores closed")
    }
}
