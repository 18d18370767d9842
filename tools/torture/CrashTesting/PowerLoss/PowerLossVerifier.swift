import Foundation
import Ringstore

/// Checks a store reopened after a simulated power cut against its ledger.
///
/// Both modes: every stream holds versions 0…n-1 without gaps; every event is
/// one the workload appended, whole, exactly once (no ID twice, in a stream or
/// in `$all`), and `$all` holds the same events as the streams, each stream's
/// in version order, positions rising; every confirmed event is still at its
/// version; appends are atomic (all their events, consecutive, or none); an
/// acknowledged event is never replaced by another at its version, nor found
/// at another position. A stream reads as tombstoned only if a tombstone was
/// sent for it, and then `$all` shows none of its events and appends to it are
/// refused; an acknowledged tombstone is never undone (in relaxed mode, one
/// acknowledged after the journal's last flush before the cut may be lost).
/// Durable mode: no acknowledged event is missing. Relaxed mode: an
/// acknowledged event may be missing only if its append ended at or after the
/// journal's durable cursor at the cut (so only the tail of each stream can be
/// missing: a gap followed by later events is a hole in the versions).
public enum PowerLossVerifier {
    public struct Outcome: Sendable {
        public var problems: [String] = []
        public var storedEvents = 0
        public var acknowledgedEvents = 0
        /// Acknowledged events missing where that is not allowed.
        public var lostEvents = 0
        /// Relaxed mode: acknowledged events missing that the journal had not made durable.
        public var missingAllowed = 0
        /// Relaxed mode: how long before the cut the oldest missing one was acknowledged.
        public var oldestMissingAge: Duration?
        /// Events present whose append was never acknowledged (allowed).
        public var unacknowledgedPresent = 0
        /// Streams found tombstoned.
        public var deletedStreams = 0
    }

    /// Verifies `store` and, on return, makes its contents the ledger's confirmed state.
    public static func verify(_ store: EventStore, ledger: inout PowerLossLedger, relaxed: Bool) async throws -> Outcome {
        var outcome = Outcome()
        func problem(_ text: String) { outcome.problems.append(text) }
        var probeRandom = SeededRandom(seed: 1)
        let all = try await store.readAll().collect()
        outcome.storedEvents = all.count
        var inAll: [String: [RecordedEvent]] = [:]
        var seen = Set<UUID>()
        var lastPosition: UInt64?
        for event in all {
            if !seen.insert(event.id).inserted { problem("event \(event.id) appears twice in $all") }
            if let last = lastPosition, event.position <= last { problem("$all goes back from position \(last) to \(event.position)") }
            lastPosition = event.position
            inAll[event.stream, default: []].append(event)
        }

        var attemptOf: [UUID: (attempt: Int, index: Int)] = [:]
        for (a, attempt) in ledger.attempts.enumerated() {
            for (i, event) in attempt.events.enumerated() { attemptOf[event.id] = (a, i) }
        }
        var confirmedIDs = Set<UUID>()
        for ids in ledger.confirmed.values { confirmedIDs.formUnion(ids) }
        var streams = Set(ledger.confirmed.keys).union(ledger.attempts.map(\.stream)).union(inAll.keys)
        streams.formUnion(try store.streamNames())
        let tombstonesSent = Set(ledger.tombstones.map(\.stream))
        // Relaxed mode may lose a tombstone acknowledged after the last flush before the cut.
        let tombstonesAcknowledged = Set(ledger.tombstones.filter {
            $0.acknowledged && !(relaxed && $0.writtenWhenAcknowledged > ledger.durableAtCut)
        }.map(\.stream))
        streams.formUnion(tombstonesSent)
        streams.formUnion(ledger.deleted)
        var deleted = Set<String>()

        var stored: [String: [RecordedEvent]] = [:]
        var located: [UUID: RecordedEvent] = [:]
        for stream in streams.sorted() {
            let events: [RecordedEvent]
            do {
                events = try await store.read(stream: stream).collect()
            } catch let error as RingstoreError where error.code == .streamNotFound {
                events = []
            } catch let error as RingstoreError where error.code == .streamDeleted {
                deleted.insert(stream)
                stored[stream] = []
                if !tombstonesSent.contains(stream) && !ledger.deleted.contains(stream) {
                    problem("stream \(stream) reads as tombstoned, but no tombstone was sent for it")
                }
                if let shown = inAll[stream], !shown.isEmpty {
                    problem("$all still shows \(shown.count) events of the tombstoned stream \(stream)")
                }
                do {
                    let late = PowerLossWorkload.event(stream: stream, writer: -1, sequence: 0, random: &probeRandom)
                    _ = try await store.append(to: stream, expectedVersion: .any, events: [late])
                    problem("an append to the tombstoned stream \(stream) was accepted")
                } catch let error as RingstoreError where error.code == .streamDeleted {
                } catch {
                    problem("an append to the tombstoned stream \(stream) failed with \(error), not as deleted")
                }
                continue
            } catch {
                problem("reading stream \(stream) failed: \(error)")
                continue
            }
            stored[stream] = events
            if tombstonesAcknowledged.contains(stream) || ledger.deleted.contains(stream) {
                problem("the acknowledged tombstone of \(stream) is lost: the stream reads with \(events.count) events")
            }
            if events.map(\.version) != Array(0..<UInt64(events.count)) {
                problem("stream \(stream) has versions \(events.map(\.version).prefix(12))…: not 0…\(events.count - 1)")
            }
            if events.map(\.id) != (inAll[stream] ?? []).map(\.id) {
                problem("stream \(stream) holds \(events.count) events, $all \(inAll[stream]?.count ?? 0) of it, or in another order")
            }
            for event in events {
                if let other = located.updateValue(event, forKey: event.id) {
                    problem("event \(event.id) is stored twice: \(other.stream) version \(other.version) and \(stream) version \(event.version)")
                }
                if let (a, i) = attemptOf[event.id] {
                    let sent = ledger.attempts[a].events[i]
                    if ledger.attempts[a].stream != stream || sent.data != event.data || sent.type != event.type {
                        problem("event \(event.id) in \(stream) version \(event.version) is not what was appended (to \(ledger.attempts[a].stream))")
                    }
                } else if !confirmedIDs.contains(event.id) {
                    problem("event \(event.id) in \(stream) version \(event.version) was never appended")
                } else if !PowerLossWorkload.isWhole(event) {
                    problem("event \(event.id) in \(stream) version \(event.version) is damaged")
                }
            }
            for (version, id) in (ledger.confirmed[stream] ?? []).enumerated() {
                guard version < events.count else {
                    problem("stream \(stream) lost confirmed events from version \(version) on (it holds \(events.count))")
                    outcome.lostEvents += (ledger.confirmed[stream]?.count ?? 0) - version
                    break
                }
                if events[version].id != id {
                    problem("stream \(stream) version \(version) holds \(events[version].id), not the confirmed \(id)")
                }
            }
        }

        for attempt in ledger.attempts where !deleted.contains(attempt.stream) {
            let events = stored[attempt.stream] ?? []
            let present = attempt.events.compactMap { located[$0.id] }
            if !present.isEmpty {
                let versions = present.map(\.version)
                if present.count != attempt.events.count || versions != Array(versions[0]..<(versions[0] + UInt64(versions.count))) {
                    problem("append to \(attempt.stream) is torn: \(present.count) of its \(attempt.events.count) events are stored, at versions \(versions)")
                }
            }
            guard let result = attempt.result else {
                outcome.unacknowledgedPresent += present.count
                continue
            }
            outcome.acknowledgedEvents += attempt.events.count
            for (i, sent) in attempt.events.enumerated() {
                let version = result.firstVersion + UInt64(i)
                if version < UInt64(events.count) {
                    let holder = events[Int(version)]
                    if holder.id != sent.id {
                        problem("\(attempt.stream) version \(version): acknowledged event \(sent.id) was replaced by \(holder.id)")
                    }
                    if i == 0 && holder.id == sent.id && holder.position != result.firstPosition {
                        problem("acknowledged event \(sent.id) is at position \(holder.position), acknowledged at \(result.firstPosition)")
                    }
                    continue
                }
                if relaxed && result.lastPosition >= ledger.durableAtCut {
                    outcome.missingAllowed += 1
                    if let cut = ledger.cutAt, let at = attempt.acknowledgedAt {
                        outcome.oldestMissingAge = max(outcome.oldestMissingAge ?? .zero, cut - at)
                    }
                } else {
                    outcome.lostEvents += 1
                    problem("acknowledged event \(sent.id) (\(attempt.stream) version \(version), journal position \(result.firstPosition)\(relaxed ? ", durable cursor at the cut \(ledger.durableAtCut)" : "")) is missing")
                }
            }
        }

        ledger.confirmed = stored.mapValues { $0.map(\.id) }.filter { !$0.value.isEmpty }
        ledger.attempts = []
        ledger.tombstones = []
        ledger.deleted.formUnion(deleted)
        outcome.deletedStreams = deleted.count
        return outcome
    }

    /// Appends one event to each of `streams` at the version the store reports
    /// next (`.exact`, or `.noStream`) and reads it back by version and from the
    /// end: after a reopen new events must land where they belong and be readable.
    public static func appendAndReadBack(_ store: EventStore, streams: [String], recorder: PowerLossRecorder,
                                         random: inout SeededRandom) async -> [String] {
        var problems: [String] = []
        for stream in streams {
            do {
                let current = try store.currentVersion(of: stream)
                let expected: ExpectedVersion = current.map { .exact($0) } ?? .noStream
                let event = PowerLossWorkload.event(stream: stream, writer: -1, sequence: 0, random: &random)
                let number = recorder.begin(stream: stream, events: [event], expected: expected)
                let result = try await store.append(to: stream, expectedVersion: expected, events: [event])
                recorder.acknowledged(number, result)
                let next = current.map { $0 + 1 } ?? 0
                if result.firstVersion != next {
                    problems.append("after reopening, an append to \(stream) expecting \(expected) landed at version \(result.firstVersion), not \(next)")
                }
                let byVersion = try await store.read(stream: stream, from: .version(result.firstVersion), maxCount: 5).collect()
                let last = try await store.read(stream: stream, from: .end, direction: .backwards, maxCount: 1).collect()
                if byVersion.map(\.id) != [event.id] || last.map(\.id) != [event.id] {
                    problems.append("after reopening, \(stream) version \(result.firstVersion) reads back as \(byVersion.map(\.id)) (from the end: \(last.map { "\($0.id) at \($0.version)" })), not the event just appended (\(event.id))")
                }
            } catch {
                problems.append("after reopening, appending to \(stream) and reading it back failed: \(error)")
            }
        }
        return problems
    }
}
