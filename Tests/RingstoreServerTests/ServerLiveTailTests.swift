import Foundation
import Ringstore
import RingstoreHTTPClient
@testable import RingstoreServer
import Synchronization
import Testing

/// Live tails over Server-Sent Events: catch-up then live with no gap or
/// duplicate while others append, resumption with Last-Event-ID, the final
/// events for a slow client and for shutdown.
@Suite struct ServerLiveTailTests {
    @Test func streamTailCatchesUpThenFollowsWithoutGapOrDuplicate() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        for batch in 0..<5 {
            let events = (0..<10).map { #"{"type":"T","data":\#(batch * 10 + $0)}"# }.joined(separator: ",")
            #expect(try await server.post("/stores/s/streams/t", json: "[\(events)]").status == 201)
        }
        let received = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
            let head = try await connection.start(.GET, "/stores/s/streams/t/subscribe")
            #expect(head.status.code == 200 && head.headers["Content-Type"].first == "text/event-stream")
            // Others append while this tail is catching up and switching to live.
            let writer = Task {
                for i in 50..<100 {
                    let response = try await server.post("/stores/s/streams/t", json: #"{"type":"T","data":\#(i)}"#)
                    #expect(response.status == 201)
                }
            }
            var reader = SSEReader(connection: connection)
            var events: [SSEReader.Event] = []
            while events.count < 100, let event = try await reader.next() { events.append(event) }
            try await writer.value
            return events
        }
        #expect(received.map(\.id) == (0..<100).map { "\($0)" })
        #expect(try received.map { try JSONSerialization.jsonObject(with: Data($0.data.utf8)) as? [String: Any] }.map { $0?["data"] as? Int }
                == Array(0..<100))

        // Resume after event 79: 80... without the earlier ones, then live again.
        let resumed = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
            _ = try await connection.start(.GET, "/stores/s/streams/t/subscribe", headers: [("Last-Event-ID", "79")])
            var reader = SSEReader(connection: connection)
            var ids: [String?] = []
            while ids.count < 20, let event = try await reader.next() { ids.append(event.id) }
            #expect(try await server.post("/stores/s/streams/t", json: #"{"type":"T","data":100}"#).status == 201)
            ids.append(try await reader.next()?.id)
            return ids
        }
        #expect(resumed == (80...100).map { "\($0)" })
        try await server.stop()
    }

    @Test func allTailFollowsSeveralWritersAndResumes() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        let acknowledged = Acknowledged()
        let (positions, ids) = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
            _ = try await connection.start(.GET, "/stores/s/all/subscribe?streamPrefix=w")
            let writers = (0..<3).map { w in
                Task {
                    for i in 0..<30 {
                        let response = try await server.post("/stores/s/streams/w\(w)", json: #"{"type":"T","data":\#(i)}"#)
                        let position = try response.json()["firstPosition"] as? Int
                        acknowledged.add(position ?? -1)
                    }
                }
            }
            _ = try await server.post("/stores/s/streams/other", json: #"{"type":"T","data":0}"#)  // filtered out
            var reader = SSEReader(connection: connection)
            var positions: [Int] = []
            var ids: [String] = []
            while positions.count < 90, let event = try await reader.next() {
                let json = try #require(try JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any])
                positions.append(try #require(json["position"] as? Int))
                ids.append(event.id ?? "")
                #expect((json["stream"] as? String)?.hasPrefix("w") == true)
            }
            for writer in writers { try await writer.value }
            return (positions, ids)
        }
        #expect(positions == positions.sorted() && Set(positions).count == 90)
        #expect(Set(positions) == Set(acknowledged.all))
        #expect(ids == positions.map(String.init))

        let resumed = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
            _ = try await connection.start(.GET, "/stores/s/all/subscribe?streamPrefix=w", headers: [("Last-Event-ID", "\(positions[59])")])
            var reader = SSEReader(connection: connection)
            var ids: [String?] = []
            while ids.count < 30, let event = try await reader.next() { ids.append(event.id) }
            return ids
        }
        #expect(resumed == positions[60...].map { "\($0)" })
        try await server.stop()
    }

    @Test func aTailThatFallsBehindGetsAFinalEventAndEnds() async throws {
        let server = try await TestServer.start { $0.liveMaxLagBytes = 1024 }
        try await server.createStore()
        let (events, ended) = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
            _ = try await connection.start(.GET, "/stores/s/all/subscribe?from=end")
            // One append of 100 events puts the newest one far more than 1 KiB ahead of the first.
            let batch = (0..<100).map { #"{"type":"T","data":"\#(String(repeating: "p", count: 100))-\#($0)"}"# }.joined(separator: ",")
            #expect(try await server.post("/stores/s/streams/fast", json: "[\(batch)]").status == 201)
            var reader = SSEReader(connection: connection)
            var events: [SSEReader.Event] = []
            while let event = try await reader.next() { events.append(event) }
            return (events, true)
        }
        #expect(ended)
        let final = try #require(events.last)
        #expect(final.name == "too-slow" && final.data.contains("Last-Event-ID"))
        #expect(events.count < 101)
        try await server.stop()
    }

    @Test func shutdownEndsTailsWithAFinalEventAndClosesTheStores() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        _ = try await server.post("/stores/s/streams/t", json: #"{"type":"T","data":0}"#)
        let events = try await HTTPClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
            _ = try await connection.start(.GET, "/stores/s/streams/t/subscribe")
            var reader = SSEReader(connection: connection)
            var events: [SSEReader.Event] = []
            events.append(try #require(try await reader.next()))  // the stored event: the tail is live now
            async let stopped: Void = server.stop()
            while let event = try await reader.next() { events.append(event) }
            try await stopped
            return events
        }
        #expect(events.map(\.name) == [nil, "shutdown"])
        // The store was closed cleanly: its lock is free and nothing is left to recover.
        let store = try await EventStore.open(at: server.directory.path + "/stores/s")
        #expect(store.stats().recoveredEvents == 0)
        #expect(try await store.read(stream: "t").collect().count == 1)
        try await store.close()
    }
}

/// Positions acknowledged by concurrent writers.
final class Acknowledged: Sendable {
    private let positions = Mutex<[Int]>([])
    func add(_ position: Int) { positions.withLock { $0.append(position) } }
    var all: [Int] { positions.withLock { $0 } }
}
