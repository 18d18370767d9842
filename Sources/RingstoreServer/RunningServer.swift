import Logging
import ServiceLifecycle
import Synchronization

/// A server started inside a program (an application embedding it, or a test):
/// ``start(_:)`` returns once it listens and its stores are open;
/// ``stop()`` shuts it down gracefully, as SIGTERM does for `ringstore serve`.
public final class RunningServer: Sendable {
    /// The port it listens on (the one picked, when configured with port 0).
    public let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.group = group
        self.task = task
    }

    /// Starts `server` and waits until it is ready.
    public static func start(_ server: RingstoreHTTPServer) async throws -> RunningServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let service = server.makeService { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [service], logger: server.logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await task.value  // it failed before listening: throw why
            throw CancellationError()
        }
        await server.waitUntilReady()
        guard server.stores.isReady else {
            try await task.value  // a store failed to open: throw why
            throw CancellationError()
        }
        return RunningServer(port: port, group: group, task: task)
    }

    /// Stops accepting, finishes requests in flight, ends live tails, closes the stores; returns when all is done.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}
