/// Lower bounds of stream files' ends (their next versions) by stream number:
/// what the segment mover's moves saw (see ``SegmentMover/carriedFileEnds``).
///
/// Dense, 8 bytes a stream up to the largest number held: catalog numbers are
/// given out in order from 0, and a sweep of a store with many streams sees
/// most of them (a dictionary took about four times the memory). An end of 0
/// bounds nothing (no version is below it), so 0 stands for "not seen".
struct StreamFileEnds: Sendable {
    private var ends: [UInt64] = []

    init() {}

    /// The end seen for `stream`, or nil. Setting nil (or 0) forgets it.
    subscript(stream: UInt32) -> UInt64? {
        get {
            let index = Int(stream)
            return index < ends.count && ends[index] > 0 ? ends[index] : nil
        }
        set {
            let index = Int(stream)
            if index >= ends.count {
                guard let newValue, newValue > 0 else { return }
                ends.append(contentsOf: repeatElement(0, count: index + 1 - ends.count))
            }
            ends[index] = newValue ?? 0
        }
    }

    /// Streams it has room for (8 bytes each), whether seen or not.
    var span: Int { ends.count }

    /// Whether no end is held.
    var isEmpty: Bool { !ends.contains { $0 > 0 } }
}
