/// How much room to reserve in a per-stream list when it gets its first
/// element, learned from how long such lists were when they were last emptied.
///
/// Why: the writer's ring entries and the splitter's pending positions are one
/// short array per stream, emptied at every checkpoint and grown again from
/// nothing. Grown one element at a time, an array that ends a checkpoint's
/// interval with 18 elements is allocated and copied six times (capacities 1,
/// 2, 4, 8, 16, 32): with 10,000 streams and one event per append, the two
/// kinds of arrays together grew about once for every two events (the ring
/// entries' inside the writer's lock). Reserving what a typical stream held
/// last time leaves one allocation or two per stream and checkpoint.
///
/// Why the median and not the mean: one hot stream among many quiet ones
/// raises the mean far above what most streams hold, and every quiet stream
/// would then reserve room it never uses (at 100,000 streams, megabytes). With
/// the median, at least half the lists counted used all the room reserved.
/// The hint is a power of two, at most `limit`, and 1 (no reservation) until
/// lists have been counted.
struct CapacityHint: Sendable {
    /// Elements to reserve for a list's first element (1: none beyond it).
    private(set) var capacity = 1
    /// The largest capacity it may hint (a power of two).
    let limit: Int
    /// Lists counted since the last ``update()``, by the power of two at or
    /// below their length (capped at `limit`): `counted[k]` lists of length 2^k to 2^(k+1) - 1.
    private var counted: [Int]

    init(limit: Int) {
        precondition(limit >= 1 && limit & (limit - 1) == 0, "a capacity hint's limit is a power of two")
        self.limit = limit
        counted = Array(repeating: 0, count: limit.trailingZeroBitCount + 1)
    }

    /// Counts one list that held `length` elements when it was emptied.
    mutating func note(length: Int) {
        guard length > 0 else { return }
        counted[(Int.bitWidth - 1 - min(length, limit).leadingZeroBitCount)] += 1
    }

    /// Sets ``capacity`` from the lists counted since the last update (kept as
    /// it is if none were), and starts counting afresh.
    mutating func update() {
        let total = counted.reduce(0, +)
        guard total > 0 else { return }
        // The largest power of two that at least half the lists reached.
        var reached = 0
        for k in counted.indices.reversed() {
            reached += counted[k]
            if 2 * reached >= total {
                capacity = 1 << k
                break
            }
        }
        for k in counted.indices { counted[k] = 0 }
    }
}
