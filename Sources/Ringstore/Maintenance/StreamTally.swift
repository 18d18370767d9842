/// What the verifier keeps of one stream while it reads the store: a few
/// words, whatever the stream's length (its events' positions are folded into
/// ``PositionDigest``s), so checking a store of 100,000 streams and millions
/// of events takes memory for the streams only.
///
/// The fields are in the order the verification touches them: first those each
/// split-segment entry updates (``segmentHot`` bytes), then those each global-index
/// entry reads and updates (``indexHot`` bytes from the start), so that the row
/// of a stream met at random costs one or two cache lines, asked for ahead
/// (``Prefetch``).
struct StreamTally: Sendable {
    /// The stored versions: `base..<next` (the stream file, continued by its bucket
    /// chain where that reaches further, then by split-segment entries).
    var base: UInt64 = 0
    var next: UInt64 = 0
    /// The last stored event's journal position (positions rise with versions).
    var lastPosition: UInt64?
    /// Positions of the stored events before the checkpoint, in version order:
    /// exactly those the global index must name.
    var covered = PositionDigest()
    var segmentEntries = 0
    var segmentBytes: UInt64 = 0
    var hasFile = false
    /// A damaged block hides some positions: the index is then checked for versions only.
    var unknownPositions = false
    /// The version the stream's next global-index entry must name (nil: none seen yet).
    var indexNext: UInt64?
    /// Positions the global index names for the stream (before the checkpoint), in order.
    var indexed = PositionDigest()
    /// An index entry named an unexpected version: the digests no longer line up.
    var indexBroken = false
    var name: String
    var fileBlocks = 0
    /// The first version of the stream's oldest intact segment entry, if that entry
    /// lies before the checkpoint (`.max`: none): opening keeps the segments from there
    /// on, so in a store not closed cleanly a torn file block from this version on is
    /// one opening cuts and the mover writes again (see ``StoreVerifier``). Set from
    /// the first entry only, so the walk touches this cold part of the row once a stream.
    var segmentFrom = UInt64.max
    var fileBytes: UInt64 = 0
    /// The stream's bucket chain as far as the walk of the bucket files has followed
    /// it (``StoreVerifier``): its newest entry and the version after that entry's last.
    /// An entry joins the chain only if it continues it, as opening takes it (``StreamBuckets``).
    var bucketLink = SplitSegment.Link.none
    var bucketNext: UInt64 = 0
    /// Chain entries and their bytes that hold versions past the stream's file
    /// (those wholly below its end are a promoted stream's garbage, counted as such).
    var bucketEntries = 0
    var bucketBytes: UInt64 = 0

    init(name: String) { self.name = name }

    var events: Int { Int(next - base) }

    /// Bytes from the start that a split-segment entry's join touches.
    static let segmentHot = MemoryLayout<StreamTally>.offset(of: \.unknownPositions)! + 1
    /// Bytes from the start that a global-index entry's check touches.
    static let indexHot = MemoryLayout<StreamTally>.offset(of: \.indexBroken)! + 1
}
