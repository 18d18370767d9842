import SystemPackage

extension SplitSegments {
    /// What opening would learn by walking the segments of a closed store,
    /// learnt instead by a walk that read them already (an offline
    /// compaction's verification), so the open does not read them again.
    ///
    /// Built entry by entry in segment order (``add(segment:offset:stream:header:)``);
    /// it only stands for the walk when opening would keep everything as it is:
    /// every entry whole and before the checkpoint (a store closed cleanly), no
    /// torn or damaged bytes, no segment without a header, and the last segment
    /// holding an entry (opening removes trailing segments without one). Anything
    /// else makes it ``usable`` false, and opening walks as usual. Opening also
    /// walks when the folder no longer holds exactly these segments at these sizes.
    struct Prepared: Sendable {
        /// The checkpoint the walk judged entries against.
        let checkpoint: UInt64
        private(set) var heads: [Head] = []
        /// Segment number and size, in order.
        private(set) var segments: [(number: UInt32, size: UInt64)] = []
        private(set) var usable = true
        private var lastHasEntry = false

        init(checkpoint: UInt64) { self.checkpoint = checkpoint }

        /// A segment's walk begins (`size`: its file's size).
        mutating func begin(segment number: UInt32, size: UInt64) {
            segments.append((number, size))
            lastHasEntry = false
        }

        /// A whole entry (its envelope, header and payload checked) of the segment begun last.
        mutating func add(segment number: UInt32, offset: UInt64, stream: UInt32, header: StreamBlock.Header) {
            guard usable, header.firstPosition < checkpoint, offset <= UInt64(UInt32.max) else { usable = false; return }
            SplitSegments.record(&heads, stream: stream, link: Link(segment: number, offset: UInt32(offset)), header: header)
            lastHasEntry = true
        }

        /// Asks for the cache line of `stream`'s head, which ``add(segment:offset:stream:header:)`` will update soon.
        mutating func prefetch(stream: UInt32) { Prefetch.element(of: &heads, at: Int(stream)) }

        /// Something opening would cut, remove or keep as damage.
        mutating func spoil() { usable = false }

        /// The walk is over: usable if opening would keep every segment whole.
        var final: Prepared? { usable && lastHasEntry && !segments.isEmpty ? self : nil }
    }

    /// The state `prepared` stands for, if `numbers` (the folder's segments, in order)
    /// are its segments at its sizes; nil (walk instead) otherwise.
    static func adopt(_ prepared: Prepared, numbers: [UInt32], checkpoint: UInt64, folder: FilePath)
        throws -> (segments: [UInt32: SplitSegment], current: SplitSegment, heads: [Head])? {
        guard prepared.checkpoint == checkpoint, numbers == prepared.segments.map(\.number) else { return nil }
        var segments: [UInt32: SplitSegment] = [:]
        var current: SplitSegment?
        for (number, size) in prepared.segments {
            guard let segment = try SplitSegment.open(number: number, in: folder), try segment.file.size() == size else { return nil }
            segment.end = size
            segment.syncedEnd = size
            segments[number] = segment
            current = segment
        }
        guard let current else { return nil }
        return (segments, current, prepared.heads)
    }
}
