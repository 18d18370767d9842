import Logging
import Foundation
import Ringstore

/// Checks a store after a crash against everything that was acknowledged.
public enum CrashVerifier {
    public struct Report: Sendable {
        public var acknowledgedEvents = 0
        public var storedEvents = 0
        /// Stored events that were never acknowledged (written, but the writer died before hearing back): allowed.
        public var unacknowledgedEvents = 0
        /// Acknowledged events not found at all (lost).
        public var lostEvents = 0
        /// Every broken promise, in words. Empty when the store kept all of them.
        public var problems: [String] = []
        /// The journal's end at verification, and its capacity: how many times the ring has wrapped.
        public var journalEnd: UInt64 = 0
        public var journalCapacity: UInt64 = 1
        /// Events the reopened store replayed from the journal (split again after the crash).
        public var recoveredEvents = 0
    }

    /// Opens the store, reads every stream and `$all`, and checks that every
    /// acknowledged event is present exactly once at its acknowledged stream,
    /// version and position; that versions are contiguous; that no event ID
    /// appears twice; and that every event's payload is whole.
    public static func verify(directory: String, configuration: Configuration,
                              acknowledgements: [Acknowledgement]) async throws -> Report {
        let store = try await EventStore.open(at: directory, configuration: configuration, logger: .crashTesting)
        do {
            let report = try await check(store, acknowledgements)
            try await store.close()
            return report
        } catch {
            try? await store.close()
            throw error
        }
    }

    private static func check(_ store: EventStore, _ acknowledgements: [Acknowledgement]) async throws -> Report {
        var report = Report()
        let stats = store.stats()
        report.journalEnd = stats.durablePosition
        report.journalCapacity = stats.journalCapacity
        report.recoveredEvents = stats.recoveredEvents
        let all = try await store.readAll().collect()
        report.storedEvents = all.count

        var byID: [UUID: RecordedEvent] = [:]
        for event in all {
            if byID.updateValue(event, forKey: event.id) != nil {
                report.problems.append("event \(event.id) appears more than once in $all")
            }
            if let payload = try? JSONSerialization.jsonObject(with: Data(event.data)) as? [String: Any] {
                if payload["stream"] as? String != event.stream {
                    report.problems.append("event \(event.id) in \(event.stream) carries the payload of another stream")
                }
            } else {
                report.problems.append("event \(event.id) at position \(event.position) has a damaged payload")
            }
        }
        var acknowledgedIDs = Set<UUID>()
        for ack in acknowledgements {
            for (offset, id) in ack.ids.enumerated() {
                report.acknowledgedEvents += 1
                acknowledgedIDs.insert(id)
                guard let stored = byID[id] else {
                    report.lostEvents += 1
                    report.problems.append("acknowledged event \(id) (\(ack.stream) version \(ack.firstVersion + UInt64(offset))) is missing")
                    continue
                }
                if stored.stream != ack.stream || stored.version != ack.firstVersion + UInt64(offset) {
                    report.problems.append("acknowledged event \(id) is at \(stored.stream) version \(stored.version), acknowledged as \(ack.stream) version \(ack.firstVersion + UInt64(offset))")
                }
                if offset == 0 && stored.position != ack.firstPosition {
                    report.problems.append("acknowledged event \(id) is at position \(stored.position), acknowledged at \(ack.firstPosition)")
                }
            }
        }
        report.unacknowledgedEvents = all.filter { !acknowledgedIDs.contains($0.id) }.count

        // Per stream: versions 0..<n without gaps, and the same events as $all holds.
        let streams = Set(all.map(\.stream))
        for stream in streams.sorted() {
            let events = try await store.read(stream: stream).collect()
            if events.map(\.version) != Array(0..<UInt64(events.count)) {
                report.problems.append("stream \(stream) has versions \(events.map(\.version).prefix(10))… — not contiguous from 0")
            }
            if Set(events.map(\.id)) != Set(all.filter { $0.stream == stream }.map(\.id)) {
                report.problems.append("stream \(stream) and $all disagree about its events")
            }
        }
        return report
    }
}
