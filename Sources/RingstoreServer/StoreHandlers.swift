import HTTPTypes
import Hummingbird
import Ringstore
import RingstoreJSONLines

/// `/stores`, `/stores/{store}`, its stream list, `$all` and stats.
extension RingstoreAPI {
    /// GET /stores: `{"stores": [{"name"}]}`, the stores this server has open.
    func listStores(_ request: Request, _ context: ServerContext) async throws -> Response {
        guard stores.isReady else { throw APIError.notReady(retryAfter: retryAfter) }
        let names = stores.storeNames
        return JSONResponses.json { json in
            json.append("{\"stores\":[")
            for (i, name) in names.enumerated() {
                if i > 0 { json.append(",") }
                json.append("{\"name\":")
                json.append(quoted: name)
                json.append("}")
            }
            json.append("]}")
        }
    }

    /// PUT /stores/{store}: opens the store, creating it if needed (201; 200 if it existed).
    func createStore(_ request: Request, _ context: ServerContext) async throws -> Response {
        let name = try PathNames.decode(context.parameters.get("store") ?? "", what: "store name")
        let (_, created) = try await calling { try await stores.create(name) }
        return JSONResponses.json(created ? .created : .ok) { json in
            json.append("{\"name\":")
            json.append(quoted: name)
            json.append("}")
        }
    }

    /// GET /stores/{store}/streams: `{"streams": [{"name", "version"}], "next"}`,
    /// sorted by name, from `after` (exclusive), only names starting with
    /// `prefix`, at most `count` (default 1000); `next` is the `after` for the following page.
    func listStreams(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let prefix = try Self.text(request, "prefix")
        let after = try Self.text(request, "after")
        let count = try Self.number(request, "count").map(Int.init) ?? 1000
        guard count >= 1, count <= Self.maxPageCount else {
            throw APIError.badRequest("query parameter count=\(count) must be from 1 to \(Self.maxPageCount)")
        }
        var page: [(String, UInt64?)] = []
        var more = false
        try await calling {
            for name in try store.streamNames() {
                if let after, name <= after { continue }
                if let prefix, !name.hasPrefix(prefix) { continue }
                if page.count == count { more = true; break }
                page.append((name, try store.currentVersion(of: name)))
            }
        }
        return JSONResponses.json { json in
            json.append("{\"streams\":[")
            for (i, (name, version)) in page.enumerated() {
                if i > 0 { json.append(",") }
                json.append("{\"name\":")
                json.append(quoted: name)
                json.append(",\"version\":")
                JSONResponses.append(optional: version, to: &json)
                json.append("}")
            }
            json.append("],\"next\":")
            if more, let last = page.last?.0 { json.append(quoted: last) } else { json.append("null") }
            json.append("}")
        }
    }

    /// GET /stores/{store}/all: a page of `$all` from position `from`, optionally
    /// only streams starting with `streamPrefix` and events of type `eventType`.
    /// With filters a page looks at no more than ``filterScanLimit`` events, so it
    /// may hold fewer than `count` even though more match later; `next` says where to go on.
    func readAll(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (_, store) = try store(context)
        let direction = try Self.direction(request)
        let count = try Self.count(request)
        let streamPrefix = try Self.text(request, "streamPrefix")
        let eventType = try Self.text(request, "eventType")
        let from: LogPosition = try Self.number(request, "from").map { .position($0) } ?? (direction == .forwards ? .start : .end)
        let filtered = streamPrefix != nil || eventType != nil
        var matches: [RecordedEvent] = []
        var next: UInt64?
        try await calling {
            var scanned = 0
            for try await event in store.readAll(from: from, direction: direction) {
                if matches.count == count || (filtered && scanned == Self.filterScanLimit) {
                    next = event.position
                    break
                }
                scanned += 1
                if let streamPrefix, !event.stream.hasPrefix(streamPrefix) { continue }
                if let eventType, event.type != eventType { continue }
                matches.append(event)
            }
        }
        return JSONResponses.json { json in
            json.append("{\"events\":")
            JSONResponses.appendEvents(matches, to: &json)
            json.append(",\"next\":")
            JSONResponses.append(optional: next, to: &json)
            json.append("}")
        }
    }

    /// Events one filtered `$all` page examines at most.
    static let filterScanLimit = 100_000

    /// GET /stores/{store}/stats: the journal's cursors and the store's counters.
    func stats(_ request: Request, _ context: ServerContext) async throws -> Response {
        let (name, store) = try store(context)
        let s = store.stats()
        return JSONResponses.json { json in
            json.append("{\"store\":")
            json.append(quoted: name)
            let numbers: [(StaticString, UInt64)] = [
                ("journalCapacity", s.journalCapacity), ("reservedPosition", s.reservedPosition),
                ("writtenPosition", s.writtenPosition), ("durablePosition", s.durablePosition),
                ("splitPosition", s.splitPosition), ("checkpointPosition", s.checkpointPosition),
                ("splitLagBytes", s.splitLag), ("journalBytesInUse", s.journalBytesInUse),
                ("streams", UInt64(s.streamCount)), ("eventsInJournal", UInt64(s.eventsInJournal)),
                ("appendsAcknowledged", s.appendsAcknowledged), ("eventsAcknowledged", s.eventsAcknowledged),
                ("flushes", s.flushes), ("eventsSplit", s.eventsSplit), ("checkpoints", s.checkpoints),
                ("openStreamFiles", UInt64(s.openStreamFiles)), ("appendsWaitedForSpace", s.appendsWaitedForSpace),
                ("readerWaits", UInt64(s.readerWaits)), ("recoveredEvents", UInt64(s.recoveredEvents)),
                ("splitSegmentBytes", s.splitSegmentBytes), ("splitSegmentHolds", s.splitSegmentHolds),
                ("bucketFileBytes", s.bucketFileBytes),
            ]
            for (key, value) in numbers {
                json.append(",\"")
                json.append(key)
                json.append("\":")
                json.append(decimal: value)
            }
            json.append(",\"recoveryStopReason\":")
            json.append(quoted: s.recoveryStopReason)
            json.append("}")
        }
    }
}
