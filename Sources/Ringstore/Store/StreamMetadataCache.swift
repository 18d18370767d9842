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
final class StreamMetadataCache: Sendable {
    private struct State: ~Copyable {
        var entries: [String: StreamMetadataState] = [:]
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

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
