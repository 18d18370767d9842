/// One thread's share of a compaction's rewrite (``ParallelLanes``): its own
/// ``CompactionWriter`` (buffers and counters) and the streams and events it
/// kept. While the lanes run, only its own thread touches it; the compaction
/// reads it once they have all returned.
final class CompactionLane: @unchecked Sendable {
    let writer: CompactionWriter
    private(set) var streamsKept = 0
    private(set) var eventsKept = 0

    init(writer: CompactionWriter) {
        self.writer = writer
    }

    /// Rewrites `stream` (catalog `number`) as the store's reads see it now
    /// (``CompactionPlan``): its new file, from its old one and its entries in
    /// `harvest`. Returns the versions kept, or nil when none are (a stream
    /// without events, or dropped).
    func rewrite(stream: String, number: UInt32, store: EventStore, harvest: SegmentHarvest,
                 oldFile: CompactionWriter.OldFile) throws -> CompactionWriter.KeptVersions? {
        guard let tail = try store.visibleTail(of: stream) else { return nil }
        let plan = try CompactionPlan.plan(for: stream, lastVersion: tail.lastVersion, in: store)
        guard case .keep(let firstVersion, let notBefore) = plan else { return nil }
        let kept = try writer.write(stream: stream, number: number, from: firstVersion, through: tail.lastVersion,
                                    notBefore: notBefore, store: store, harvest: harvest, oldFile: oldFile)
        guard kept.count > 0, let first = kept.firstVersion else { return nil }
        streamsKept += 1
        eventsKept += kept.count
        return CompactionWriter.KeptVersions(from: first, through: first + UInt64(kept.count) - 1)
    }

    /// The table of what each stream keeps, written by the lanes at once: each
    /// item writes only its own stream's slot, so no two threads touch one
    /// element, and the caller reads the table after the lanes' join.
    struct KeepTable: @unchecked Sendable {
        private let base: UnsafeMutableBufferPointer<CompactionWriter.KeptVersions>
        init(_ base: UnsafeMutableBufferPointer<CompactionWriter.KeptVersions>) { self.base = base }
        subscript(index: Int) -> CompactionWriter.KeptVersions {
            get { base[index] }
            nonmutating set { base[index] = newValue }
        }
    }
}
