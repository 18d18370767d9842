import Synchronization

/// How far the splitter has got, for readers deciding whether they must wait.
///
/// `splitPosition`: every record before it is in its stream file (readable,
/// perhaps not yet durable). `ahead`: streams a waiting reader asked for, split
/// ahead of the main pass up to the recorded next version. Readers poll this
/// table (every millisecond, up to `readerWait`); waits are rare and short, so
/// polling keeps the splitter free of per-reader bookkeeping.
final class ReaderTable: Sendable {
    let splitPosition: Atomic<UInt64>
    private let ahead = Mutex<[String: UInt64]>([:])
    private let requests = Mutex<Set<String>>([])

    init(splitPosition: UInt64) {
        self.splitPosition = Atomic(splitPosition)
    }

    /// Next version of `stream` not yet split ahead of the main pass (0 if none).
    func aheadNextVersion(of stream: String) -> UInt64 {
        ahead.withLock { $0[stream] ?? 0 }
    }

    func recordAhead(_ stream: String, nextVersion: UInt64) {
        ahead.withLock { table in
            if nextVersion > table[stream] ?? 0 { table[stream] = nextVersion }
        }
    }

    /// Forgets ahead-of-pass entries once the main pass has passed them.
    func forgetAhead(_ streams: some Sequence<String>) {
        ahead.withLock { table in
            // Usually empty (no reader asked ahead of the scan): no name hashed then.
            guard !table.isEmpty else { return }
            for stream in streams { table[stream] = nil }
        }
    }

    /// Set while requests are waiting: checked between streams in a split round.
    let hasRequests = Atomic<Bool>(false)

    /// A reader asks for `stream` to be split first.
    func request(_ stream: String) {
        requests.withLock { r in
            r.insert(stream)
            hasRequests.store(true, ordering: .releasing)
        }
    }

    func takeRequests() -> Set<String> {
        requests.withLock { r in
            defer {
                r.removeAll()
                hasRequests.store(false, ordering: .releasing)
            }
            return r
        }
    }
}
