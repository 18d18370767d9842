/// Encoded records waiting to be written to the ring, in journal order.
///
/// Appenders encode into it under the writer's lock; the flusher swaps it out
/// whole and writes it with one `pwrite` per contiguous segment. Records are
/// contiguous in logical position except where a padding record fills the
/// ring's tail: only the padding header is staged, and the next record starts a
/// new segment at the next lap, so the unused tail is never written.
final class StagingBuffer: @unchecked Sendable {
    // @unchecked Sendable: owned by exactly one party at a time — the writer's
    // lock holder while it is the active buffer, the flusher once swapped out.

    /// A run of staged bytes that is contiguous in the journal.
    struct Segment {
        var position: UInt64
        var offset: Int
        var count: Int
    }

    // Unchecked exclusivity: one party at a time owns the buffer (above), and the
    // runtime's dynamic checks of these class properties cost every append two
    // access-set updates in the writer's lock section (about 150 instructions).
    @exclusivity(unchecked) private(set) var storage: UnsafeMutableRawPointer
    @exclusivity(unchecked) private(set) var capacity: Int
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private(set) var segments: [Segment] = []

    init(capacity: Int = 1 << 16) {
        self.capacity = capacity
        self.storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    var isEmpty: Bool { count == 0 }

    /// Logical position just past the last staged byte (valid when not empty).
    var endPosition: UInt64 {
        guard let last = segments.last else { return 0 }
        return last.position + UInt64(last.count)
    }

    /// Reserves `length` bytes for the record at logical `position` and hands
    /// them to `encode` to fill. Do not let the pointer escape `encode`: the
    /// next reservation may move the storage.
    @inline(__always)
    func reserve<Result>(_ length: Int, at position: UInt64,
                         _ encode: (UnsafeMutableRawBufferPointer) -> Result) -> Result {
        if count + length > capacity { grow(to: count + length) }
        if let last = segments.last, last.position + UInt64(last.count) == position {
            segments[segments.count - 1].count += length
        } else {
            segments.append(Segment(position: position, offset: count, count: length))
        }
        // Safe: `grow` made `count + length <= capacity`, so these bytes lie inside the allocation.
        let bytes = UnsafeMutableRawBufferPointer(start: storage + count, count: length)
        count += length
        return encode(bytes)
    }

    /// The bytes of one segment. Do not let the buffer escape the call's scope.
    func bytes(of segment: Segment) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage + segment.offset, count: segment.count)
    }

    /// Empties the buffer, keeping its memory; shrinks it if a burst made it large.
    func reset() {
        count = 0
        segments.removeAll(keepingCapacity: true)
        if capacity > 8 << 20 {
            storage.deallocate()
            capacity = 1 << 16
            storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newStorage.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
    }
}
