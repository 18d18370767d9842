import Foundation
@testable import Ringstore
import RingstoreHTTPClient
@testable import RingstoreServer
import Testing

/// Every route over a real loopback socket, with the status codes each gives.
@Suite struct ServerAPITests {
    @Test func healthStoresAndUnknownStores() async throws {
        let server = try await TestServer.start()
        #expect(try await server.get("/health").text == #"{"status":"ready"}"#)
        #expect(try await server.put("/stores/orders").status == 201)
        #expect(try await server.put("/stores/orders").status == 200)
        let list = try await server.get("/stores")
        #expect(list.text == #"{"stores":[{"name":"orders"}]}"#)

        let unknown = try await server.get("/stores/nope/streams")
        #expect(unknown.status == 404 && unknown.errorCode == "storeNotFound")
        let badName = try await server.put("/stores/.hidden")
        #expect(badName.status == 400 && badName.errorCode == "invalidArgument")
        let badEscape = try await server.get("/stores/a%2/streams")
        #expect(badEscape.status == 400)
        let noRoute = try await server.get("/nothing/here")
        #expect(noRoute.status == 404 && noRoute.errorCode == "notFound")
        // A path that exists with another method: 405 and the methods it takes.
        let wrongMethod = try await server.request(.PATCH, "/stores/orders/streams/x")
        #expect(wrongMethod.status == 405 && wrongMethod.headers["Allow"].first == "POST, GET, DELETE")
        #expect(try await server.request(.POST, "/health").headers["Allow"].first == "GET")
        try await server.stop()
    }

    @Test func appendAndReadPages() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        let first = try await server.post("/stores/s/streams/order-1", json: """
            [{"type":"Placed","data":{"total": 42, "items":[1,2]}},
             {"type":"Blob","dataBase64":"AAEC/w==","metadata":{"by":"test"}},
             {"type":"Text","data":"just a string","id":"6f1e2d3c-0000-4000-8000-000000000001"}]
            """, headers: [("Expected-Version", "no-stream")])
        #expect(first.status == 201)
        let result = try first.json()
        #expect(result["firstVersion"] as? Int == 0 && result["lastVersion"] as? Int == 2)
        #expect(try await server.post("/stores/s/streams/order-1", json: #"{"type":"One","data":null}"#,
                                      headers: [("Expected-Version", "2")]).status == 201)

        // JSON data comes back byte for byte, binary as base64, a page at a time.
        let page = try await server.get("/stores/s/streams/order-1?count=2")
        #expect(page.status == 200)
        #expect(page.text.contains(#""data":{"total": 42, "items":[1,2]}"#))
        #expect(page.text.contains(#""dataBase64":"AAEC/w==""#))
        #expect(page.text.contains(#""metadata":{"by":"test"}"#) == false)  // binary data: metadata goes base64 too
        let pageJSON = try page.json()
        #expect((pageJSON["events"] as? [Any])?.count == 2 && pageJSON["next"] as? Int == 2)
        let rest = try await server.get("/stores/s/streams/order-1?from=2").json()
        let restEvents = try #require(rest["events"] as? [[String: Any]])
        #expect(restEvents.map { $0["version"] as? Int } == [2, 3] && rest["next"] is NSNull)
        #expect(restEvents[0]["id"] as? String == "6f1e2d3c-0000-4000-8000-000000000001")
        let backwards = try await server.get("/stores/s/streams/order-1?direction=backwards&count=3").json()
        #expect((backwards["events"] as? [[String: Any]])?.map { $0["version"] as? Int } == [3, 2, 1])
        #expect(backwards["next"] as? Int == 0)

        // A stream name with a slash, percent-encoded.
        #expect(try await server.post("/stores/s/streams/a%2Fb", json: #"{"type":"T","data":1}"#).status == 201)
        #expect(try await server.get("/stores/s/streams/a%2Fb").json()["stream"] as? String == "a/b")
        #expect(try await server.get("/stores/s/streams/missing").status == 404)

        // Streams, with versions, paged.
        let streams = try await server.get("/stores/s/streams?count=1").json()
        #expect((streams["streams"] as? [[String: Any]])?.first?["name"] as? String == "a/b")
        #expect(streams["next"] as? String == "a/b")
        let more = try await server.get("/stores/s/streams?after=a%2Fb").json()
        #expect((more["streams"] as? [[String: Any]])?.map { $0["version"] as? Int } == [3])
        try await server.stop()
    }

    @Test func allWithFiltersAndPaging() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        for i in 0..<6 {
            let stream = i % 2 == 0 ? "order-\(i)" : "user-\(i)"
            #expect(try await server.post("/stores/s/streams/\(stream)", json: #"{"type":"\#(i < 3 ? "A" : "B")","data":\#(i)}"#).status == 201)
        }
        let all = try await server.get("/stores/s/all?count=4").json()
        let events = try #require(all["events"] as? [[String: Any]])
        #expect(events.map { $0["data"] as? Int } == [0, 1, 2, 3])
        let next = try #require(all["next"] as? Int)
        let tail = try await server.get("/stores/s/all?from=\(next)").json()
        #expect((tail["events"] as? [[String: Any]])?.map { $0["data"] as? Int } == [4, 5] && tail["next"] is NSNull)
        let orders = try await server.get("/stores/s/all?streamPrefix=order-").json()
        #expect((orders["events"] as? [[String: Any]])?.map { $0["data"] as? Int } == [0, 2, 4])
        let typed = try await server.get("/stores/s/all?streamPrefix=order-&eventType=B").json()
        #expect((typed["events"] as? [[String: Any]])?.map { $0["data"] as? Int } == [4])
        let backwards = try await server.get("/stores/s/all?direction=backwards&count=2").json()
        #expect((backwards["events"] as? [[String: Any]])?.map { $0["data"] as? Int } == [5, 4])
        try await server.stop()
    }

    @Test func expectedVersionsAndRetries() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        let id = UUID().uuidString
        let body = #"{"type":"T","data":1,"id":"\#(id)"}"#
        let first = try await server.post("/stores/s/streams/x", json: body, headers: [("Expected-Version", "no-stream")])
        #expect(first.status == 201)
        // The same event ID at the same expected version: the first result again, nothing written twice.
        let retry = try await server.post("/stores/s/streams/x", json: body, headers: [("Expected-Version", "no-stream")])
        #expect(retry.status == 201 && retry.text == first.text)
        #expect((try await server.get("/stores/s/streams/x").json()["events"] as? [Any])?.count == 1)

        let conflict = try await server.post("/stores/s/streams/x", json: #"{"type":"T","data":2}"#, headers: [("Expected-Version", "5")])
        #expect(conflict.status == 409)
        let body409 = try conflict.json()
        #expect(body409["code"] as? String == "wrongExpectedVersion" && body409["currentVersion"] as? Int == 0)
        let missing = try await server.post("/stores/s/streams/y", json: #"{"type":"T","data":2}"#, headers: [("Expected-Version", "exists")])
        let missingBody = try missing.json()
        #expect(missing.status == 409 && missingBody["currentVersion"] is NSNull)
        #expect(try await server.post("/stores/s/streams/x", json: #"{"type":"T","data":2}"#, headers: [("Expected-Version", "exists")]).status == 201)
        let bad = try await server.post("/stores/s/streams/x", json: #"{"type":"T","data":2}"#, headers: [("Expected-Version", "-1")])
        #expect(bad.status == 400 && bad.text.contains("Expected-Version"))
        try await server.stop()
    }

    @Test func metadataDeletesAndSnapshots() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        for i in 0..<5 { _ = try await server.post("/stores/s/streams/m", json: #"{"type":"T","data":\#(i)}"#) }
        #expect(try await server.get("/stores/s/streams/m/metadata").text
            == #"{"maxCount":null,"maxAge":null,"truncateBefore":null,"softDeleted":false,"metadataVersion":null}"#)
        let set = try await server.put("/stores/s/streams/m/metadata", json: #"{"maxCount":2,"maxAge":3600}"#)
        #expect(set.status == 200 && set.text == #"{"metadataVersion":0}"#)
        let stale = try await server.put("/stores/s/streams/m/metadata", json: #"{"maxCount":3}"#, headers: [("Expected-Version", "no-stream")])
        #expect(stale.status == 409)
        #expect(try await server.put("/stores/s/streams/m/metadata", json: #"{"maxCount":0}"#).status == 400)
        #expect(try await server.put("/stores/s/streams/m/metadata", json: #"{"color":"red"}"#).status == 400)
        let metadata = try await server.get("/stores/s/streams/m/metadata").json()
        #expect(metadata["maxCount"] as? Int == 2 && metadata["maxAge"] as? Int == 3600)
        #expect((try await server.get("/stores/s/streams/m").json()["events"] as? [[String: Any]])?.map { $0["version"] as? Int } == [3, 4])

        // Snapshots: none yet, save, load; a version past the stream's end is refused.
        #expect(try await server.get("/stores/s/streams/m/snapshot").status == 404)
        #expect(try await server.put("/stores/s/streams/m/snapshot", json: #"{"version":4,"data":{"sum":10}}"#).status == 204)
        let snapshot = try await server.get("/stores/s/streams/m/snapshot").json()
        #expect(snapshot["version"] as? Int == 4 && (snapshot["data"] as? [String: Any])?["sum"] as? Int == 10)
        let ahead = try await server.put("/stores/s/streams/m/snapshot", json: #"{"version":9,"data":1}"#)
        let aheadBody = try ahead.json()
        #expect(ahead.status == 409 && ahead.errorCode == "snapshotAheadOfStream" && aheadBody["currentVersion"] as? Int == 4)
        #expect(try await server.put("/stores/s/streams/m/snapshot", json: #"{"version":4,"data":1,"dataBase64":"AA=="}"#).status == 400)
        #expect(try await server.put("/stores/s/streams/m/snapshot", json: #"{"data":1}"#).status == 400)

        // Soft delete: 204, then reads say 404; an append brings the stream back.
        #expect(try await server.request(.DELETE, "/stores/s/streams/m").status == 204)
        #expect(try await server.get("/stores/s/streams/m").status == 404)
        #expect(try await server.request(.DELETE, "/stores/s/streams/m").status == 404)
        #expect(try await server.post("/stores/s/streams/m", json: #"{"type":"T","data":5}"#).status == 201)
        // Hard delete: 410 for reads, appends, metadata, snapshots and tails, for good.
        #expect(try await server.request(.DELETE, "/stores/s/streams/m?hard=true").status == 204)
        #expect(try await server.get("/stores/s/streams/m").status == 410)
        let gone = try await server.post("/stores/s/streams/m", json: #"{"type":"T","data":6}"#)
        #expect(gone.status == 410 && gone.errorCode == "streamDeleted")
        #expect(try await server.get("/stores/s/streams/m/metadata").status == 410)
        #expect(try await server.get("/stores/s/streams/m/snapshot").status == 410)
        #expect(try await server.get("/stores/s/streams/m/subscribe").status == 410)
        #expect(try await server.request(.DELETE, "/stores/s/streams/m?hard=maybe").status == 400)
        try await server.stop()
    }

    @Test func statsMetricsOpenAPIAndPage() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        _ = try await server.post("/stores/s/streams/a", json: #"{"type":"T","data":1}"#)
        let stats = try await server.get("/stores/s/stats").json()
        #expect(stats["eventsAcknowledged"] as? Int == 1 && stats["journalCapacity"] as? Int == 1 << 20)
        #expect(stats["splitSegmentBytes"] as? Int != nil && stats["splitSegmentHolds"] as? Int == 0)
        // Every field the description requires is there.
        let description = try #require(try JSONSerialization.jsonObject(with: Data(ServerResources.load("openapi.json"))) as? [String: Any])
        let schemas = try #require((description["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let required = try #require((schemas["Stats"] as? [String: Any])?["required"] as? [String])
        #expect(required.filter { stats[$0] == nil } == [], "described but missing")
        let metrics = try await server.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains(#"ringstore_http_requests_total{route="/stores/{store}/streams/{stream}",method="POST",status="201"} 1"#))
        #expect(metrics.text.contains("ringstore_http_request_duration_seconds_bucket"))
        let openAPI = try await server.get("/openapi.json").json()
        #expect((openAPI["openapi"] as? String)?.hasPrefix("3.") == true)
        let page = try await server.get("/")
        #expect(page.status == 200 && page.headers["Content-Type"].first?.hasPrefix("text/html") == true)
        #expect(!page.text.contains("http://") && !page.text.contains("https://"), "the page loads nothing from elsewhere")
        try await server.stop()
    }

    /// The ring full past the wait bound: 503 with Retry-After (the splitter held back so nothing frees space).
    @Test func ringFullIsA503WithRetryAfter() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        guard case .store(let store) = server.server.stores.lookup("s") else { Issue.record("no store"); return }
        store.splitter.testing.scanLimit.store(0, ordering: .relaxed)
        defer { store.splitter.testing.scanLimit.store(.max, ordering: .relaxed) }
        let data = String(repeating: "x", count: 60_000)
        var last: HTTPClientResponse?
        for _ in 0..<40 {
            let response = try await server.post("/stores/s/streams/big", json: #"{"type":"T","data":"\#(data)"}"#)
            last = response
            if response.status != 201 { break }
        }
        let response = try #require(last)
        #expect(response.status == 503 && response.errorCode == "journalFull")
        #expect(response.headers["Retry-After"].first == "1")
        store.splitter.testing.scanLimit.store(.max, ordering: .relaxed)
        try await server.stop()
    }
}

/// The OpenAPI description and the router list the same routes.
@Suite struct OpenAPIDescriptionTests {
    @Test func describesExactlyTheRoutesTheServerHas() throws {
        let description = try #require(try JSONSerialization.jsonObject(with: Data(ServerResources.load("openapi.json"))) as? [String: Any])
        let paths = try #require(description["paths"] as? [String: [String: Any]])
        var described: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys { described.insert("\(method.uppercased()) \(path)") }
        }
        let served = Set(RingstoreHTTPServer.routes.map { "\($0.method.rawValue) \($0.path)" })
        #expect(described == served)
    }
}

/// `/health` says "starting" (503, Retry-After) until every store is open, and the store routes wait the same way.
@Suite struct ReadinessTests {
    @Test func notReadyUntilTheStoresAreOpen() async throws {
        let directory = TemporaryDirectory()
        // A store that exists before the server starts.
        try FileManager.default.createDirectory(atPath: directory.path + "/stores", withIntermediateDirectories: true)
        let existing = try await EventStore.open(at: directory.path + "/stores/old")
        _ = try await existing.append(to: "x", events: [EventData(type: "T", json: "1")])
        try await existing.close()

        let (gate, open) = AsyncStream<Void>.makeStream()
        var configuration = ServerConfiguration(dataRoot: directory.path + "/stores")
        configuration.port = 0
        configuration.beforeOpeningStores = { for await _ in gate {} }
        let server = try RingstoreHTTPServer(configuration: configuration)
        let (ports, listening) = AsyncStream<Int>.makeStream()
        let service = server.makeService { listening.yield($0) }
        let running = Task { try await service.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        func get(_ path: String) async throws -> HTTPClientResponse {
            try await HTTPClient.withConnection(host: "127.0.0.1", port: port) { try await $0.execute(.GET, path) }
        }
        let starting = try await get("/health")
        #expect(starting.status == 503 && starting.text == #"{"status":"starting"}"# && starting.headers["Retry-After"].first == "1")
        let early = try await get("/stores/old/streams/x")
        #expect(early.status == 503 && early.errorCode == "notReady")

        open.finish()
        await server.waitUntilReady()
        #expect(try await get("/health").status == 200)
        #expect(try await get("/stores/old/streams/x").status == 200)
        running.cancel()
        _ = try? await running.value
    }
}
