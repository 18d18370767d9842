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
        /// How long `EventStore.open` took: recovery, until appends are accepted.
        public var openDuration: Duration = .zero
        /// Unanswered appends sent again after the reopen: found stored (nothing
        /// written), and stored by the retry.
        public var retriesRecognised = 0
        public var retriesStored = 0
        /// What the retries were answered: acknowledged now, so later rounds check them too.
        public var retried: [Acknowledgement] = []
    }

    /// Opens the store, reads every stream and `$all`, and checks that every
    /// acknowledged event is present exactly once at its acknowledged stream,
    /// version and position; that versions are contiguous; that no event ID
    /// appears twice; and that every event's payload is whole. Then sends
    /// again, as a client that never heard back would (same IDs, `.any`), each
    /// of `sendings` that no acknowledgement answered: found stored, it must
    /// be answered with where it is and nothing written; not stored, it is
    /// stored once.
    public static func verify(directory: String, configuration: Configuration,
                              acknowledgements: [Acknowledgement], sendings: [Sending] = []) async throws -> Report {
        let clock = ContinuousClock()
        let opening = clock.now
        let store = try await EventStore.open(at: directory, configuration: configuration, logger: .crashTesting)
        let openDuration = clock.now - opening
        do {
            var report = try await check(store, acknowledgements)
            report.openDuration = openDuration
            let answered = Set(acknowledgements.compactMap(\.ids.first))
            try await retry(sendings.filter { !$0.ids.isEmpty && !answered.contains($0.ids[0]) }, in: store, report: &report)
            try await store.close()
            return report
        } catch {
            try? await store.close()
            throw error
        }
    }

    private static func retry(_ unanswered: [Sending], in store: EventStore, report: inout Report) async throws {
        for sending in unanswered {
            let label = "retrying the unanswered append of \(sending.ids.count) events to \(sending.stream)"
            let before: [RecordedEvent]
            do {
                before = try await store.read(stream: sending.stream).collect()
            } catch let error as RingstoreError where error.code == .streamNotFound {
                before = []
            }
            let present = sending.ids.compactMap { id in before.first { $0.id == id } }
            let result: AppendResult
            do {
                result = try await store.append(to: sending.stream, expectedVersion: .any, events: sending.events)
            } catch {
                report.problems.append("\(label): failed: \(error)")
                continue
            }
            let after = try await store.read(stream: sending.stream).collect()
            for id in sending.ids where after.filter({ $0.id == id }).count != 1 {
                report.problems.append("\(label): event \(id) is stored \(after.filter { $0.id == id }.count) times after the retry")
            }
            if let first = present.first {
                report.retriesRecognised += 1
                if present.count != sending.ids.count {
                    report.problems.append("\(label): only \(present.count) of its events were stored before the retry")
                }
                if result.firstVersion != first.version || result.firstPosition != first.position || after.count != before.count {
                    report.problems.append("\(label): its events were stored from version \(first.version) at position \(first.position); the retry answered version \(result.firstVersion) at \(result.firstPosition), and the stream went from \(before.count) to \(after.count) events")
                }
            } else {
                report.retriesStored += 1
                if result.firstVersion != UInt64(before.count) || after.count != before.count + sending.ids.count {
                    report.problems.append("\(label): not stored before, the retry answered version \(result.firstVersion) with \(before.count) events before it and \(after.count) after")
                }
            }
            report.retried.append(Acknowledgement(stream: sending.stream, firstVersion: result.firstVersion,
                                                  firstPosition: result.firstPosition, ids: sending.ids))
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
        // (Grouped once: filtering `all` per stream took minutes over 100,000 streams.)
        let idsInAll = Dictionary(grouping: all, by: \.stream).mapValues { Set($0.map(\.id)) }
        for stream in idsInAll.keys.sorted() {
            let events = try await store.read(stream: stream).collect()
            if events.map(\.version) != Array(0..<UInt64(events.count)) {
                report.problems.append("stream \(stream) has versions \(events.map(\.version).prefix(10))… — not contiguous from 0")
            }
            if Set(events.map(\.id)) != idsInAll[stream] {
                report.problems.append("stream \(stream) and $all disagree about its events")
            }
        }
        return report
    }
}
