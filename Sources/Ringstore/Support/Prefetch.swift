import CRingstoreSupport

/// Cache-line hints for loops that update a large table at indexes known a few
/// steps ahead (the verifier's per-stream tallies, met in journal order): asking
/// for a row early lets its cache miss overlap the work on the rows before it.
/// Hints only: an index out of range asks for nothing, and no hint changes a result.
enum Prefetch {
    /// How many entries ahead a walk that updates a row per stream asks for the
    /// row it will meet (the split segments' opening walk, the verifier's
    /// segment walk and global-index pass, a compaction's segment routing): far
    /// enough for a cache miss to be over when the entry comes, near enough for
    /// the rows to stay cached. With 100,000 streams a miss per entry had made
    /// recording the segments' heads 0.24-0.45 s of reopening a store with 3.41 M
    /// segment entries (about 0.02 s with the rows asked for ahead).
    static let rowsAhead = 8

    /// Asks for the cache lines of the first `bytes` bytes of `buffer[index]`.
    @inline(__always)
    static func element<T>(in buffer: UnsafeBufferPointer<T>, at index: Int, bytes: Int = MemoryLayout<T>.stride) {
        guard index >= 0, index < buffer.count, let base = buffer.baseAddress else { return }
        let start = UnsafeRawPointer(base + index)
        var offset = 0
        while offset < bytes {
            rs_prefetch(start + offset)
            offset += 64
        }
        rs_prefetch(start + (bytes - 1))
    }

    /// Asks for the cache lines of `buffer[offset..<offset + count]` (nothing outside `buffer`).
    @inline(__always)
    static func bytes(_ buffer: UnsafeRawBufferPointer, at offset: Int, count: Int) {
        guard offset >= 0, count > 0, offset <= buffer.count - count, let base = buffer.baseAddress else { return }
        var at = 0
        while at < count {
            rs_prefetch(base + offset + at)
            at += 64
        }
        rs_prefetch(base + offset + count - 1)
    }

    /// ``element(in:at:bytes:)`` of an array (taken `inout` so that asking costs no reference count).
    @inline(__always)
    static func element<T>(of array: inout [T], at index: Int, bytes: Int = MemoryLayout<T>.stride) {
        array.withUnsafeBufferPointer { element(in: $0, at: index, bytes: bytes) }
    }

    /// Asks for the first cache line of `array`'s storage (its header, then its
    /// first elements) without reading it: the array's one reference is read as
    /// bits, so no reference count is touched. An empty array's storage is a
    /// shared constant, which is harmless to ask for.
    @inline(__always)
    static func arrayStorage<T>(of array: inout [T]) {
        let storage = withUnsafeBytes(of: &array) { $0.load(as: UnsafeRawPointer.self) }
        rs_prefetch(storage)
    }
}
