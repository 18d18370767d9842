import Foundation
import Ringstore

/// A client's retries after a power cut: appends sent again, with the same
/// event IDs and the same expected version, to the reopened store.
///
/// A client that lost its connection at the cut does not know whether its
/// append was stored, and one that got an acknowledgement may not have
/// received it; both send the append again. The contract (README, "Retries are
/// idempotent"): with `.exact` or `.noStream` the retry succeeds and returns
/// the first append's result if the events are stored, stores them once if
/// they are not, and fails with `.wrongExpectedVersion` only if the stream has
/// moved past that version (or `.streamDeleted` if the stream was tombstoned); with `.any` the same holds for appends that the
/// rebuilt idempotency window covers (the journal's last `journalCapacity`
/// bytes), and an append that is not stored is stored once.
///
/// Retried here: every append of the round that was not acknowledged (in
/// flight at the cut, or refused while the journal was full) and a sample of
/// acknowledged ones, each checked against what the reopened store holds.
enum PowerLossRetries {
    struct Outcome {
        var problems: [String] = []
        /// Retries answered from what was stored (nothing written).
        var recognised = 0
        /// Retries that stored their events (they were not stored before).
        var stored = 0
        /// Retries refused because their stream had moved past their expected version
        /// or was tombstoned.
        var refused = 0
    }

    /// Sends the retries; appends that store events are registered with `recorder`,
    /// so the next verification expects them.
    static func run(_ store: EventStore, attempts: [PowerLossAttempt], recorder: PowerLossRecorder,
                    random: inout SeededRandom) async -> Outcome {
        var outcome = Outcome()
        let stats = store.stats()
        // The window rebuilt at open covers the journal's last capacity bytes, less the
        // append its scan lands in: an `.any` append that begins in the newer half is covered.
        let windowStart = stats.writtenPosition &- stats.journalCapacity / 2
        var chosen = attempts.indices.filter { attempts[$0].result == nil }
        let acknowledged = attempts.indices.filter { attempts[$0].result != nil }
        for _ in 0..<min(12, acknowledged.count) { chosen.append(acknowledged.randomElement(using: &random)!) }

        for index in Set(chosen).sorted() {
            let attempt = attempts[index]
            let label = "retrying the \(attempt.result == nil ? "unacknowledged" : "acknowledged") append of \(attempt.events.count) events to \(attempt.stream) expecting \(attempt.expected)"
            do {
                guard let before = try await storedEvents(of: attempt.stream, in: store) else {
                    do {
                        _ = try await store.append(to: attempt.stream, expectedVersion: attempt.expected, events: attempt.events)
                        outcome.problems.append("\(label): accepted, although the stream is tombstoned")
                    } catch let error as RingstoreError where error.code == .streamDeleted {
                        outcome.refused += 1
                    }
                    continue
                }
                let present = attempt.events.compactMap { sent in before.first { $0.id == sent.id } }
                if attempt.expected == .any, let first = present.first, first.position < windowStart {
                    continue  // older than the rebuilt window covers: it would be stored again (documented)
                }
                let expectation = expected(attempt, present: present, before: before)
                let result: AppendResult
                do {
                    result = try await store.append(to: attempt.stream, expectedVersion: attempt.expected, events: attempt.events)
                } catch let error as RingstoreError where error.code == .wrongExpectedVersion {
                    guard case .refused = expectation else {
                        outcome.problems.append("\(label): refused as a wrong expected version (current \(error.currentVersion.map(String.init) ?? "none")), expected \(expectation)")
                        continue
                    }
                    outcome.refused += 1
                    continue
                }
                let after = try await storedEvents(of: attempt.stream, in: store) ?? []
                for sent in attempt.events where after.filter({ $0.id == sent.id }).count != 1 {
                    outcome.problems.append("\(label): event \(sent.id) is stored \(after.filter { $0.id == sent.id }.count) times after the retry")
                }
                switch expectation {
                case .recognised(let original):
                    if Landing(result) != original {
                        outcome.problems.append("\(label): answered \(Landing(result)), but its events are stored at \(original)")
                    }
                    if after.count != before.count {
                        outcome.problems.append("\(label): the stream grew from \(before.count) to \(after.count) events on a retry of stored events")
                    }
                    outcome.recognised += 1
                case .storedAt(let version):
                    if result.firstVersion != version || result.lastVersion != version + UInt64(attempt.events.count) - 1 {
                        outcome.problems.append("\(label): stored at versions \(result.firstVersion)…\(result.lastVersion), expected from \(version)")
                    }
                    let number = recorder.begin(stream: attempt.stream, events: attempt.events, expected: attempt.expected)
                    recorder.acknowledged(number, result)
                    outcome.stored += 1
                case .refused:
                    outcome.problems.append("\(label): succeeded (\(result)), although the stream had moved past its expected version")
                }
            } catch {
                outcome.problems.append("\(label): failed: \(error)")
            }
        }
        return outcome
    }

    /// What a retry must do, given what the store holds before it.
    enum Expectation: CustomStringConvertible {
        /// The events are stored: the retry returns where they are and writes nothing.
        case recognised(Landing)
        /// The events are not stored: the retry stores them from this version.
        case storedAt(UInt64)
        /// Not stored, and the stream is past the expected version: `.wrongExpectedVersion`.
        case refused

        var description: String {
            switch self {
            case .recognised(let landing): "recognised as stored at \(landing)"
            case .storedAt(let version): "stored from version \(version)"
            case .refused: "refused as a wrong expected version"
            }
        }
    }

    /// Where an append's events are: what an ``AppendResult`` says, comparable.
    struct Landing: Equatable, CustomStringConvertible {
        var versions: ClosedRange<UInt64>
        var positions: ClosedRange<UInt64>

        init(versions: ClosedRange<UInt64>, positions: ClosedRange<UInt64>) {
            self.versions = versions
            self.positions = positions
        }

        init(_ result: AppendResult) {
            self.init(versions: result.firstVersion...result.lastVersion, positions: result.firstPosition...result.lastPosition)
        }

        var description: String { "versions \(versions), positions \(positions)" }
    }

    static func expected(_ attempt: PowerLossAttempt, present: [RecordedEvent], before: [RecordedEvent]) -> Expectation {
        if let first = present.first, let last = present.last {
            return .recognised(Landing(versions: first.version...last.version, positions: first.position...last.position))
        }
        let next = UInt64(before.count)
        switch attempt.expected {
        case .any: return .storedAt(next)
        case .noStream: return before.isEmpty ? .storedAt(0) : .refused
        case .streamExists: return before.isEmpty ? .refused : .storedAt(next)
        case .exact(let version): return version + 1 == next ? .storedAt(next) : .refused
        }
    }

    /// The stream's events; nil if it is tombstoned.
    private static func storedEvents(of stream: String, in store: EventStore) async throws -> [RecordedEvent]? {
        do {
            return try await store.read(stream: stream).collect()
        } catch let error as RingstoreError where error.code == .streamNotFound {
            return []
        } catch let error as RingstoreError where error.code == .streamDeleted {
            return nil
        }
    }
}
