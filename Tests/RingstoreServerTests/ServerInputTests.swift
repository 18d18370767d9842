import Foundation
import Ringstore
import RingstoreHTTPClient
@testable import RingstoreServer
import Testing

/// Bad input of every kind gets a 4xx with a JSON body that says what was wrong, never a 500.
@Suite struct ServerInputTests {
    @Test func malformedBodiesAndWrongContentTypes() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        let cases: [(String, Int, String)] = [
            ("{bad", 400, "malformed JSON"),
            ("", 400, "empty"),
            ("[]", 400, "empty"),
            ("42", 400, "JSON object"),
            (#"{"data":1}"#, 400, #"the event: missing \"type\""#),
            (#"{"type":"T"}"#, 400, #"missing \"data\""#),
            (#"{"type":"T","data":1,"dataBase64":"AA=="}"#, 400, "not both"),
            (#"{"type":"T","dataBase64":"***"}"#, 400, "base64"),
            (#"{"type":"T","data":1,"id":"not-a-uuid"}"#, 400, "UUID"),
            (#"[{"type":"T","data":1},{"type":"T","data":tru}]"#, 400, "malformed JSON"),
            (#"[{"type":"T","data":1},{"type":"T"}]"#, 400, "event 1: missing"),
            (#"{"type":"","data":1}"#, 400, "type"),
            (#"{"type":"T","data":1} trailing"#, 400, "unexpected text"),
        ]
        for (body, status, words) in cases {
            let response = try await server.post("/stores/s/streams/x", json: body)
            #expect(response.status == status, "\(body): \(response.status) \(response.text)")
            #expect(response.text.contains(words), "\(body): \(response.text)")
            #expect(response.errorCode != nil)
        }
        let notUTF8 = try await server.request(.POST, "/stores/s/streams/x", headers: [("Content-Type", "application/json")],
                                               body: [UInt8](#"{"type":"T","data":""#.utf8) + [0xFF] + [UInt8](#""}"#.utf8))
        #expect(notUTF8.status == 400 && notUTF8.text.contains("UTF-8"))
        for contentType in ["text/plain", "application/x-www-form-urlencoded"] {
            let response = try await server.request(.POST, "/stores/s/streams/x", headers: [("Content-Type", contentType)],
                                                    body: Array(#"{"type":"T","data":1}"#.utf8))
            #expect(response.status == 415 && response.errorCode == "unsupportedMediaType")
        }
        let noType = try await server.request(.POST, "/stores/s/streams/x", body: Array(#"{"type":"T","data":1}"#.utf8))
        #expect(noType.status == 415)
        #expect(try await server.request(.POST, "/stores/s/streams/x", headers: [("Content-Type", "application/json; charset=utf-8")],
                                         body: Array(#"{"type":"T","data":1}"#.utf8)).status == 201)
        try await server.stop()
    }

    @Test func badNamesAndQueries() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        let event = #"{"type":"T","data":1}"#
        #expect(try await server.post("/stores/s/streams/%24system", json: event).errorCode == "invalidStreamName")
        #expect(try await server.post("/stores/s/streams/%FF%FE", json: event).status == 400)
        #expect(try await server.post("/stores/s/streams/a%00b", json: event).status == 400)
        #expect(try await server.post("/stores/s/streams/\(String(repeating: "n", count: 1025))", json: event).status == 400)
        #expect(try await server.post("/stores/bad%20name/streams/x", json: event).status == 400)
        _ = try await server.post("/stores/s/streams/x", json: event)
        for query in ["count=0", "count=10001", "count=abc", "from=-1", "from=1.5", "direction=sideways"] {
            let response = try await server.get("/stores/s/streams/x?\(query)")
            #expect(response.status == 400, "\(query): \(response.text)")
        }
        for query in ["streamPrefix=", "eventType=", "count=0"] {
            #expect(try await server.get("/stores/s/all?\(query)").status == 400, "\(query)")
        }
        #expect(try await server.get("/stores/s/streams/x/subscribe", headers: [("Last-Event-ID", "later")]).status == 400)
        try await server.stop()
    }

    @Test func oversizeBodiesAndEvents() async throws {
        let server = try await TestServer.start()
        try await server.createStore()
        // The body limit follows the store's largest append: half of its 1 MiB journal, plus room for JSON.
        let limit = RingstoreAPI.bodyLimit(of: try #require({ if case .store(let s) = server.server.stores.lookup("s") { s } else { nil } }()))
        let huge = #"{"type":"T","data":""# + String(repeating: "x", count: limit) + #""}"#
        let tooLarge = try await server.post("/stores/s/streams/x", json: huge)
        #expect(tooLarge.status == 413 && tooLarge.errorCode == "bodyTooLarge")
        // One event over maxEventSize (64 KiB here), in a body under the limit.
        let big = try await server.post("/stores/s/streams/x", json: #"{"type":"T","data":""# + String(repeating: "y", count: 70_000) + #""}"#)
        #expect(big.status == 413 && big.errorCode == "eventTooLarge")
        try await server.stop()
    }

    @Test func bearerTokenGuardsEverythingButHealth() async throws {
        let server = try await TestServer.start(token: "s3cret")
        #expect(try await server.get("/health").status == 200)
        let none = try await server.put("/stores/s")
        #expect(none.status == 401 && none.headers["WWW-Authenticate"].first == "Bearer")
        #expect(try await server.put("/stores/s", headers: [("Authorization", "Bearer wrong")]).status == 401)
        #expect(try await server.put("/stores/s", headers: [("Authorization", "Basic s3cret")]).status == 401)
        #expect(try await server.put("/stores/s", headers: [("Authorization", "Bearer s3cret")]).status == 201)
        for path in ["/", "/metrics", "/openapi.json", "/stores", "/stores/s/streams", "/stores/s/all/subscribe"] {
            #expect(try await server.get(path).status == 401, "\(path)")
        }
        #expect(try await server.get("/stores?token=s3cret").status == 200)
        #expect(try await server.get("/stores/s/stats", headers: [("Authorization", "Bearer s3cret")]).status == 200)
        try await server.stop()
    }
}
