import Synchronization

/// Hard deletes as the writer enforces them.
///
/// A tombstoned stream has `deleted` set in its index entry, checked in the
/// append's lock section, so no append can land after the tombstone. The flag
/// is set in three ways: by the tombstone append itself (in the same lock
/// section that stages it), by the store at open for streams recovery found in
/// the ring, and, for a stream first written in a later session, by
/// ``DeletionLookup`` when the stream enters the index.
extension JournalWriter {
    /// The stream a tombstone append deletes, and the version it must be at.
    struct TombstoneTarget: Sendable {
        var stream: String
        var expected: ExpectedVersion
    }

    /// Checks the deleted stream's expected version and marks it deleted, or says why not.
    /// The stream must be in the index (the store introduces it first).
    func markDeleted(_ target: TombstoneTarget, state s: inout State) -> RingstoreError? {
        guard let entry = s.index.streams[target.stream] else {
            return RingstoreError(.invalidArgument, "stream \"\(target.stream)\" must be indexed before it is tombstoned", stream: target.stream)
        }
        if entry.deleted { return deletedError(target.stream) }
        let current = entry.currentVersion
        let matches = switch target.expected {
        case .any: true
        case .noStream: current == nil
        case .streamExists: current != nil
        case .exact(let version): current == version
        }
        guard matches else {
            let currentText = current.map { "is at version \($0)" } ?? "does not exist"
            return RingstoreError(.wrongExpectedVersion,
                                  "deleting stream \"\(target.stream)\" expected \(target.expected.text), but the stream \(currentText)",
                                  stream: target.stream, currentVersion: current)
        }
        s.index.streams[target.stream]!.deleted = true
        return nil
    }

    /// Marks streams deleted whose tombstones the store found (at open).
    func markDeleted(_ streams: [String]) {
        state.withLock { s in
            for stream in streams where s.index.streams[stream] != nil { s.index.streams[stream]!.deleted = true }
        }
    }

    /// True if `stream` is in the index.
    func isIndexed(_ stream: String) -> Bool {
        state.withLock { $0.index.streams[stream] != nil }
    }

    func deletedError(_ stream: String) -> RingstoreError {
        RingstoreError(.streamDeleted, "stream \"\(stream)\" was deleted (tombstoned) and can never be written again", stream: stream)
    }
}

/// Answers "was this stream hard-deleted in an earlier session?" for streams
/// entering the writer's index. The store installs the answer at open (it
/// needs the metadata streams, which the writer does not know); until then,
/// and for tests that build a journal alone, nothing is deleted.
final class DeletionLookup: Sendable {
    typealias Check = @Sendable (String) throws -> Bool

    /// The closure lives in a class: a closure stored directly in a `Mutex` is
    /// re-wrapped in reabstraction thunks by every `withLock` (the inout access
    /// writes it back), so each call would grow a chain of thunks without end.
    private final class Box: Sendable {
        let check: Check
        init(_ check: @escaping Check) { self.check = check }
    }
    private let box = Mutex<Box?>(nil)

    func install(_ check: @escaping Check) { box.withLock { $0 = Box(check) } }

    func isDeleted(_ stream: String) throws -> Bool {
        guard let current = box.withLock({ $0 }) else { return false }
        return try current.check(stream)
    }
}
