import Foundation
import Ringstore
import RingstoreJSONLines

/// `ringstore import --url`: sends each batch as one POST, over 8 keep-alive
/// connections. A stream always goes through the same connection, so its
/// batches stay in input order; at most 256 batches wait at once, so a large
/// input is read no faster than the server takes it.
actor RemoteImporter: ImportSink {
    private let remote: RemoteStore
    private let acks: Bool
    private var queues: [AsyncStream<Importer.Batch>.Continuation] = []
    private var workers: [Task<Void, any Error>] = []
    private var waiting = 0
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []
    private var events = 0
    private var failures = 0

    static let connections = 8
    static let maxWaiting = 256

    init(remote: RemoteStore, acks: Bool) {
        self.remote = remote
        self.acks = acks
    }

    func submit(_ batch: Importer.Batch) async throws {
        if workers.isEmpty { start() }
        while waiting >= Self.maxWaiting {
            await withCheckedContinuation { roomWaiters.append($0) }
        }
        waiting += 1
        var hasher = Hasher()
        hasher.combine(batch.stream)
        queues[Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.connections))].yield(batch)
    }

    func finish() async throws -> (events: Int, failures: Int) {
        for queue in queues { queue.finish() }
        for worker in workers { try await worker.value }
        return (events, failures)
    }

    private func start() {
        for _ in 0..<Self.connections {
            let (stream, continuation) = AsyncStream<Importer.Batch>.makeStream()
            queues.append(continuation)
            workers.append(Task.detached { [remote, acks] in
                try await Self.work(stream, remote: remote, acks: acks, importer: self)
            })
        }
    }

    /// One connection's worker: it lives in its own task, off the actor, which only keeps counts.
    private static func work(_ batches: AsyncStream<Importer.Batch>, remote: RemoteStore, acks: Bool, importer: RemoteImporter) async throws {
        try await remote.withConnection { connection in
            for await batch in batches {
                let appended = try await send(batch, on: connection, remote: remote, acks: acks)
                await importer.sent(batch, appended: appended)
            }
        }
    }

    private func sent(_ batch: Importer.Batch, appended: Bool) {
        if appended { events += batch.items.count } else { failures += 1 }
        waiting -= 1
        if !roomWaiters.isEmpty { roomWaiters.removeFirst().resume() }
    }

    /// POSTs one batch; false if the server refused it (reported on standard error).
    private static func send(_ batch: Importer.Batch, on connection: RemoteStore.Connection, remote: RemoteStore,
                             acks: Bool) async throws -> Bool {
        var body = JSONByteBuffer()
        body.append("[")
        for (i, item) in batch.items.enumerated() {
            if i > 0 { body.append(",") }
            body.append(raw: RemoteStore.body(of: item.event).bytes)
        }
        body.append("]")
        let headers = connection.headers + [("Content-Type", "application/json"),
                                            ("Expected-Version", RemoteStore.header(batch.expected ?? .any))]
        let response = try await connection.http.execute(.POST, remote.storePath + RemoteStore.streamPath(batch.stream),
                                                         headers: headers, body: body.bytes)
        guard response.status == 201 else {
            let message = RemoteStore.error(from: response).message
            FileHandle.standardError.write(Data("ringstore import: line \(batch.items[0].number): \(message)\n".utf8))
            return false
        }
        if acks, let item = batch.items.first {
            let answer = try JSONLine(response.body)
            Importer.printAck(item, version: try answer.scalarText("firstVersion").flatMap(UInt64.init) ?? 0,
                              position: try answer.scalarText("firstPosition").flatMap(UInt64.init) ?? 0)
        }
        return true
    }
}
