import Synchronization

/// The current metadata of recently used streams, so that reads honour it
/// without reading the metadata stream each time.
///
/// Entries are loaded lazily from the metadata stream (also "none", so a stream
/// without metadata costs one lookup per page) and replaced after each metadata
/// write. The metadata stream is the truth: the cache may be dropped whole at
/// any time (it is, when it grows past `capacity`), and a later lookup loads
/// again. Two rules keep it from going back in time: an entry is replaced only
/// by one from a later metadata event, and a load started before a drop is not
/// stored after it (the generation counter).
///
/// It also knows which streams have a metadata stream at all, so that the
/// common case — a stream without metadata — costs one set lookup and no
/// cache entry: the set is built on first use from the names the store knows
/// (catalog and writer's index) and extended before each metadata write.
final class StreamMetadataCache: Sendable {
    private struct State: ~Copyable {
        var entries: [String: StreamMetadataState] = [:]
        var generation: UInt64 = 0
        /// Streams that have a metadata stream, once scanned (nil before).
        var withMetadata: Set<String>?
        /// Streams given metadata in this session (kept apart so that a scan cannot miss them).
        var givenMetadata: Set<String> = []
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

    /// Whether `stream` may have metadata; `scan` lists the streams with a
    /// metadata stream and runs once, outside the lock, on first use.
    func mayHaveMetadata(_ stream: String, scan: () -> [String]) -> Bool {
        let known: Bool? = state.withLock { s in
            if s.givenMetadata.contains(stream) { return true }
            return s.withMetadata.map { $0.contains(stream) }
        }
        if let known { return known }
        let scanned = Set(scan())
        return state.withLock { s in
            if s.withMetadata == nil { s.withMetadata = scanned }
            return s.withMetadata!.contains(stream) || s.givenMetadata.contains(stream)
        }
    }

    /// Whether no stream at all may have metadata (then ``mayHaveMetadata(_:scan:)``
    /// is false for every stream): `$all` then needs no lookup per stream.
    func noStreamHasMetadata(scan: () -> [String]) -> Bool {
        let known: Bool? = state.withLock { s in
            guard s.givenMetadata.isEmpty else { return false }
            return s.withMetadata.map { $0.isEmpty }
        }
        if let known { return known }
        let scanned = Set(scan())
        return state.withLock { s in
            if s.withMetadata == nil { s.withMetadata = scanned }
            return s.withMetadata!.isEmpty && s.givenMetadata.isEmpty
        }
    }

    /// The streams for which ``mayHaveMetadata(_:scan:)`` is true now, for a
    /// caller that asks of many streams at once (a `$all` page): one lock for
    /// the page, and one or two set lookups per stream, instead of a lock and
    /// two lookups per event. The two sets are the cache's own (shared, not
    /// copied), so taking them costs the same however many streams have metadata.
    func streamsMayHaveMetadata(scan: () -> [String]) -> StreamsWithMetadata {
        _ = noStreamHasMetadata(scan: scan)  // lists the streams with metadata on first use
        return state.withLock { s in StreamsWithMetadata(listed: s.withMetadata ?? [], given: s.givenMetadata) }
    }

    /// Records that `stream` is getting a metadata stream (call before writing it).
    func noteMetadata(of stream: String) {
        state.withLock { s in _ = s.givenMetadata.insert(stream) }
    }

    /// The cached state, if any.
    func lookup(_ stream: String) -> StreamMetadataState? { state.withLock { $0.entries[stream] } }

    /// Changes whenever the cache is dropped; read it before loading.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Stores a loaded state unless the cache was dropped since `generation` or holds a newer one.
    func storeLoaded(_ loaded: StreamMetadataState, for stream: String, generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            insert(loaded, for: stream, into: &s)
        }
    }

    /// Records the result of a metadata write (acknowledged, so durable).
    func storeWritten(_ written: StreamMetadataState, for stream: String) {
        state.withLock { s in insert(written, for: stream, into: &s) }
    }

    private func insert(_ new: StreamMetadataState, for stream: String, into s: inout State) {
        if let old = s.entries[stream] {
            if new.isNewer(than: old) { s.entries[stream] = new }
            return
        }
        if s.entries.count >= capacity {
            s.entries.removeAll(keepingCapacity: true)
            s.generation += 1
        }
        s.entries[stream] = new
    }
}

/// A snapshot of the streams that may have metadata (see
/// ``StreamMetadataCache/streamsMayHaveMetadata(scan:)``).
struct StreamsWithMetadata: Sendable {
    /// Listed from the store's names on first use.
    let listed: Set<String>
    /// Given metadata in this session.
    let given: Set<String>

    func contains(_ stream: String) -> Bool { listed.contains(stream) || given.contains(stream) }
}
