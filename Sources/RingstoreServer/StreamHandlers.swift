import Foundation
import HTTPTypes
import Hummingbird
import Ringstore
import RingstoreJSONLines

/// `/stores/{store}/streams/{stream}`: append, read, delete; its metadata and snapshot.
extension RingstoreAPI {
    /// POST: append one event or an array of them, atomically. `Expected-Version`
    /// guards it; a retry with the same event IDs at the same expected version is
    /// answered 201 with the first append's result and writes nothing.
    func append(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        try Self.requireJSON(request)
        let expected = try EventInput.expectedVersion(request.headers[values: .expectedVersion].first)
        let events = try EventInput.parse(try await Self.body(request, limit: Self.bodyLimit(of: store)))
        let result = try await calling { try await store.append(to: stream, expectedVersion: expected, events: events) }
        return JSONResponses.json(.created) { json in
            json.append("{\"stream\":")
            json.append(quoted: stream)
            json.append(",\"firstVersion\":")
            json.append(decimal: result.firstVersion)
            json.append(",\"lastVersion\":")
            json.append(decimal: result.lastVersion)
            json.append(",\"firstPosition\":")
            json.append(decimal: result.firstPosition)
            json.append(",\"lastPosition\":")
            json.append(decimal: result.lastPosition)
            json.append("}")
        }
    }

    /// GET: a page of the stream's events from `from` (default: the start, or the
    /// end backwards), `count` of them (default 100), and `next`, the version to
    /// ask for the following page (null at the end).
    func readStream(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        let direction = try Self.direction(request)
        let count = try Self.count(request)
        let from: StreamRevision = try Self.number(request, "from").map { .version($0) } ?? (direction == .forwards ? .start : .end)
        let events = try await calling { try await store.read(stream: stream, from: from, direction: direction, maxCount: count + 1).collect() }
        let next = events.count > count ? events[count].version : nil
        return JSONResponses.json { json in
            json.append("{\"stream\":")
            json.append(quoted: stream)
            json.append(",\"events\":")
            JSONResponses.appendEvents(events.prefix(count), to: &json)
            json.append(",\"next\":")
            JSONResponses.append(optional: next, to: &json)
            json.append("}")
        }
    }

    /// DELETE: soft delete (the stream can be written again, its old events stay
    /// hidden), or with `hard=true` a tombstone (never written again). 204.
    func delete(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        let expected = try EventInput.expectedVersion(request.headers[values: .expectedVersion].first)
        let hard: Bool
        switch request.uri.queryParameters["hard"] {
        case nil, "false": hard = false
        case "true": hard = true
        case let other?: throw APIError.badRequest("query parameter hard=\(other) must be true or false")
        }
        try await calling {
            if hard { try await store.tombstoneStream(stream, expectedVersion: expected) } else { try await store.deleteStream(stream, expectedVersion: expected) }
        }
        return Response(status: .noContent)
    }

    /// GET metadata: `{"maxCount", "maxAge" (seconds), "truncateBefore", "softDeleted", "metadataVersion"}`.
    func metadata(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        let (metadata, version) = try await calling {
            (try store.streamMetadata(of: stream), try store.currentVersion(of: "$$" + stream))
        }
        return JSONResponses.json { json in StreamMetadataJSON.append(metadata, version: version, to: &json) }
    }

    /// PUT metadata: replaces it all (members left out or null are unset);
    /// `Expected-Version` is checked against the metadata's own version. 200 with the new metadata version.
    func setMetadata(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        try Self.requireJSON(request)
        let expected = try EventInput.expectedVersion(request.headers[values: .expectedVersion].first)
        let json: JSONLine
        do { json = try JSONLine(try await Self.body(request, limit: 64 << 10)) } catch let error as JSONLine.ParseError {
            throw APIError.badRequest("malformed JSON: \(error.description)")
        }
        var metadata = StreamMetadata()
        for (key, raw) in json.members where !raw.elementsEqual("null".utf8) {
            switch key {
            case "maxCount": metadata.maxCount = try Self.unsigned(raw, key)
            case "truncateBefore": metadata.truncateBefore = try Self.unsigned(raw, key)
            case "maxAge":
                guard raw.first != UInt8(ascii: "\""), let seconds = Double(String(decoding: raw, as: UTF8.self)),
                      seconds.isFinite, seconds > 0, seconds <= 1e14 else {
                    throw APIError.badRequest("\"maxAge\" must be a positive number of seconds, at most 1e14")
                }
                metadata.maxAge = .milliseconds(Int64((seconds * 1000).rounded(.up)))
            case "softDeleted", "metadataVersion": continue  // as GET returns them; not settable
            default: throw APIError.badRequest("unknown metadata member \"\(key)\" (maxCount, maxAge, truncateBefore)")
            }
        }
        let result = try await calling { try await store.setStreamMetadata(metadata, for: stream, expectedMetadataVersion: expected) }
        return JSONResponses.json { json in
            json.append("{\"metadataVersion\":")
            json.append(decimal: result.lastVersion)
            json.append("}")
        }
    }

    /// GET snapshot: `{"stream", "version", "timestamp", "data" | "dataBase64"}`
    /// (`data` when the saved bytes are JSON); 404 if none was saved.
    func snapshot(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        guard let snapshot = try await calling({ try store.loadSnapshot(of: stream) }) else {
            throw APIError(.notFound, "snapshotNotFound", "stream \"\(stream)\" has no snapshot", stream: stream)
        }
        return JSONResponses.json { json in
            json.append("{\"stream\":")
            json.append(quoted: stream)
            json.append(",\"version\":")
            json.append(decimal: snapshot.version)
            json.append(",\"timestamp\":")
            json.append(quotedTimestampNanoseconds: snapshot.timestampNanoseconds)
            if JSONLine.isValidJSONValue(snapshot.data) {
                json.append(",\"data\":")
                json.append(raw: snapshot.data)
            } else {
                json.append(",\"dataBase64\":")
                json.append(quotedBase64: snapshot.data)
            }
            json.append("}")
        }
    }

    /// PUT snapshot: `{"version", "data" | "dataBase64"}`; the last one saved wins. 204.
    func saveSnapshot(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let stream = try stream(context)
        try Self.requireJSON(request)
        let body = try await Self.body(request, limit: store.configuration.maxEventSize + (store.configuration.maxEventSize / 3) + (64 << 10))
        let json: JSONLine
        do { json = try JSONLine(body) } catch { throw APIError.badRequest("malformed JSON: \(error)") }
        let version: UInt64
        do {
            guard let text = try json.scalarText("version"), let number = UInt64(text) else {
                throw APIError.badRequest("\"version\" must be the stream version the snapshot describes (a number)")
            }
            version = number
        } catch let error as JSONLine.ParseError { throw APIError.badRequest(error.description) }
        let data: [UInt8]
        switch (json.members["data"], json.members["dataBase64"]) {
        case (let raw?, nil):
            data = Array(raw)
        case (nil, .some):
            guard let base64 = try? json.string("dataBase64"), let decoded = Data(base64Encoded: base64) else {
                throw APIError.badRequest("\"dataBase64\" must be base64 text")
            }
            data = Array(decoded)
        case (.some, .some):
            throw APIError.badRequest("give \"data\" or \"dataBase64\", not both")
        case (nil, nil):
            throw APIError.badRequest("a snapshot needs \"data\" (any JSON value) or \"dataBase64\" (base64 text)")
        }
        do {
            try await store.saveSnapshot(of: stream, version: version, data: data)
        } catch let error as RingstoreError where error.code == .invalidArgument && error.currentVersion != nil {
            // A version the stream does not have yet: a conflict with its state, like a wrong expected version.
            throw APIError(.conflict, "snapshotAheadOfStream", error.message, stream: stream, currentVersion: .some(error.currentVersion))
        } catch let error as RingstoreError {
            throw APIError(error, retryAfter: retryAfter)
        }
        return Response(status: .noContent)
    }

    /// A member that must be a whole number from 0 to 2^64 - 1, written as plain digits.
    static func unsigned(_ raw: ArraySlice<UInt8>, _ key: String) throws(APIError) -> UInt64 {
        guard !raw.isEmpty, raw.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(String(decoding: raw, as: UTF8.self)) else {
            throw .badRequest("\"\(key)\" must be a whole number from 0 to \(UInt64.max)")
        }
        return value
    }
}

extension HTTPField.Name {
    /// The append's expected version: `any`, `no-stream`, `exists` or a number.
    static let expectedVersion = HTTPField.Name("Expected-Version")!
}
