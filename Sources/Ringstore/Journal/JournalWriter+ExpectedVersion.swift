#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Synchronization

/// The expected-version rule, and recognising a retried append (same event IDs
/// at the same versions) as a success that writes nothing.
extension JournalWriter {
    /// A possible retry of an append whose first events have left the ring
    /// (all of them, or those before a checkpoint that fell inside it): its
    /// events still in the ring were compared under the writer's lock and
    /// matched; those before ``ringFirstVersion`` are compared with the stream
    /// file, which holds every version that has left the ring.
    struct StoredRetry: Sendable {
        var firstVersion: UInt64
        /// The first version of the append compared in the ring (one past its last if none was).
        var ringFirstVersion: UInt64
        /// The append's last event's position, if that event is in the ring.
        var lastPositionInRing: UInt64?
        /// What to throw if the stream file's IDs differ: the append is then no retry.
        var otherwise: RingstoreError
    }

    /// What the expected-version check decided for an append.
    enum VersionCheck {
        case proceed
        case duplicate(AppendResult)
        case storedRetry(StoredRetry)
        case reject(RingstoreError)
    }

    /// Applies the expected-version rule, recognising a retry of an earlier
    /// append (same event IDs at the same versions) as a success that writes nothing.
    func checkExpectedVersion(_ append: PreparedAppend, current: UInt64?, state s: inout State) -> VersionCheck {
        let count = append.events.count
        func wrong() -> RingstoreError {
            let currentText = current.map { "is at version \($0)" } ?? "does not exist"
            return RingstoreError(
                .wrongExpectedVersion,
                "append to stream \"\(append.stream)\" expected \(append.expected.text), but the stream \(currentText)",
                stream: append.stream, currentVersion: current)
        }
        /// Whether this append repeats the one that took versions from
        /// `firstVersion` on: its IDs there are compared with the ring's, and with
        /// the stream file's for versions that have left the ring (a checkpoint
        /// may have fallen inside that append, leaving part in each). Nil if it
        /// cannot be a retry; `.storedRetry` when the file must confirm it.
        func retry(from firstVersion: UInt64, otherwise: RingstoreError) -> VersionCheck? {
            guard let slot = s.index.streams.slot(of: append.stream) else { return nil }
            let nextVersion = s.index.streams[at: slot].nextVersion
            let ringFirst = s.index.streams[at: slot].ringFirstVersion
            // All of its versions must exist.
            guard firstVersion < nextVersion, nextVersion - firstVersion >= UInt64(count) else { return nil }
            let last = firstVersion + UInt64(count - 1)
            let inRingFrom = max(firstVersion, ringFirst)
            var lastPosition: UInt64?
            if inRingFrom <= last {
                let skipped = Int(inRingFrom - firstVersion)
                let start = Int(inRingFrom - ringFirst)
                let end = Int(last - ringFirst)
                let entries = s.index.streams[at: slot].entries[start...end]
                guard entries.lazy.map(\.id).elementsEqual(append.events[skipped...].lazy.map(\.id)) else { return nil }
                lastPosition = entries.last!.position
                if skipped == 0 {
                    return .duplicate(AppendResult(firstVersion: firstVersion, lastVersion: last,
                                                   firstPosition: entries.first!.position, lastPosition: entries.last!.position))
                }
            }
            return .storedRetry(StoredRetry(firstVersion: firstVersion, ringFirstVersion: min(inRingFrom, last + 1),
                                            lastPositionInRing: lastPosition, otherwise: otherwise))
        }
        func windowRetry() -> VersionCheck? {
            guard let entry = s.window.lookup(append.events[0].id) else { return nil }
            let conflict = RingstoreError(
                .idempotencyConflict,
                "event \(append.events[0].id) was already appended to stream \"\(entry.stream)\" at version \(entry.firstVersion) in an append of \(entry.count) events that this one does not repeat exactly",
                stream: append.stream)
            if entry.stream == append.stream, entry.count == count,
               let check = retry(from: entry.firstVersion, otherwise: conflict) {
                return check
            }
            return .reject(conflict)
        }
        switch append.expected {
        case .any:
            return windowRetry() ?? .proceed
        case .streamExists:
            if let check = windowRetry() { return check }
            return current == nil ? .reject(wrong()) : .proceed
        case .noStream:
            guard current != nil else { return .proceed }
            return retry(from: 0, otherwise: wrong()) ?? .reject(wrong())
        case .exact(let expected):
            guard let current else { return .reject(wrong()) }
            if current == expected { return .proceed }
            // `expected < current` here, so `expected + 1` cannot overflow.
            if current > expected, let check = retry(from: expected + 1, otherwise: wrong()) { return check }
            return .reject(wrong())
        }
    }
}

extension ExpectedVersion {
    var text: String {
        switch self {
        case .any: "any version"
        case .noStream: "no stream"
        case .streamExists: "an existing stream"
        case .exact(let version): "version \(version)"
        }
    }
}
