/// What the journal answers about the records it still holds, for the store's
/// readers and the splitter.
///
/// The writer's index (``JournalIndex``) and the cursors kept with it
/// (`reserved`, `checkpoint`) change under the writer's lock, the same lock
/// every append takes once. Code outside `Journal/` never takes that lock nor
/// reads the index: it asks one of these questions, each answered in one short
/// lock section (no I/O, no allocation beyond the answer). An answer is a
/// snapshot: a checkpoint or an append may follow at once, and each method
/// says what its caller can rely on nonetheless.
extension Journal {
    /// A stream's acknowledged end as the ring knows it.
    enum IndexedTail: Sendable, Equatable {
        /// The index has no entry for the stream (its records, if any, have all
        /// left the ring before this session wrote to it): ask the stream files.
        case notIndexed
        /// Indexed, but no event of it is acknowledged.
        case empty
        /// The last acknowledged version, and its record's position if that
        /// record is still in the ring (nil if it has been checkpointed).
        case last(version: UInt64, positionInRing: UInt64?)
    }

    /// The checkpoint: every record before it is in durable stream files, and
    /// appends may reuse its ring space. Read under the writer's lock; it only
    /// grows.
    var checkpoint: UInt64 { writer.state.withLock { $0.checkpoint } }

    /// The end of the ring space handed out to appends, and the checkpoint,
    /// read together under the writer's lock: `reserved - checkpoint` is the
    /// part of the ring in use.
    var spaceInUse: (reserved: UInt64, checkpoint: UInt64) {
        writer.state.withLock { ($0.reserved, $0.checkpoint) }
    }

    /// The last version of `stream` whose record lies before `visible` (the
    /// acknowledged cursor the caller loaded), in one look at the index under
    /// the writer's lock.
    ///
    /// Acknowledged records are a prefix of a stream's ring positions, so the
    /// answer is exact for `visible`; versions before the stream's first one in
    /// the ring are all acknowledged (they have been checkpointed).
    func tail(of stream: String, visibleBelow visible: UInt64) -> IndexedTail {
        writer.state.withLock { s in
            guard let state = s.index.streams[stream] else { return .notIndexed }
            let visibleCount = state.entries.partitioningIndex { $0.position >= visible }
            if visibleCount > 0 {
                return .last(version: state.ringFirstVersion + UInt64(visibleCount - 1),
                             positionInRing: state.entries[visibleCount - 1].position)
            }
            return state.ringFirstVersion == 0 ? .empty : .last(version: state.ringFirstVersion - 1, positionInRing: nil)
        }
    }

    /// Every indexed stream with at least one event before `visible` (in the
    /// ring or already checkpointed), under the writer's lock. Streams whose
    /// records have all left the ring before this session are not indexed:
    /// the stream catalog names those.
    func indexedStreams(withEventsBelow visible: UInt64) -> [String] {
        writer.state.withLock { s in
            s.index.streams.compactMap { name, state in
                (state.ringFirstVersion > 0 || state.entries.first.map { $0.position < visible } == true) ? name : nil
            }
        }
    }

    /// Every indexed stream whose name begins with `prefix` (metadata streams,
    /// for instance), under the writer's lock.
    func indexedStreams(withPrefix prefix: String) -> [String] {
        writer.state.withLock { s in s.index.streams.names.filter { $0.hasPrefix(prefix) } }
    }

    /// The index's key for `stream`, if indexed: the name as stored, which may
    /// be a Unicode-equivalent name with other bytes (the index's `String` keys
    /// equate those), and the one copy of it the store shares. Under the
    /// writer's lock.
    func indexedName(equivalentTo stream: String) -> String? {
        writer.state.withLock { s in s.index.streams.slot(of: stream).map { s.index.streams.name(at: $0) } }
    }

    /// For each name, the index's copy of it if the index holds exactly those
    /// bytes, else nil; one lock section of the writer's for them all.
    ///
    /// Why: tables keyed by stream name should share one copy of each name (a
    /// long name is a heap object of its own); the index's key is that copy.
    func sharedNames(of names: [String]) -> [String?] {
        guard !names.isEmpty else { return [] }
        return writer.state.withLock { s in
            names.map { name in
                guard let slot = s.index.streams.slot(of: name) else { return nil }
                let key = s.index.streams.name(at: slot)
                return key.hasSameUTF8(as: name) ? key : nil
            }
        }
    }

    /// True if the ring still holds every event of `stream` from version 0 on
    /// (so it has no stream file yet). Under the writer's lock.
    func holdsWholeStream(_ stream: String) -> Bool {
        writer.state.withLock { s in
            s.index.streams[stream].map { !$0.entries.isEmpty && $0.ringFirstVersion == 0 } ?? false
        }
    }

    /// The ring positions of `stream`'s records in `range` (journal positions),
    /// in order; empty if it is not indexed. Under the writer's lock.
    func positions(of stream: String, in range: Range<UInt64>) -> [UInt64] {
        writer.state.withLock { s in
            guard let state = s.index.streams[stream] else { return [] }
            return state.entries.compactMap { range.contains($0.position) ? $0.position : nil }
        }
    }

    /// The position of the last event in the ring before `visible`, if any.
    /// Under the writer's lock.
    func lastEventPosition(below visible: UInt64) -> UInt64? {
        writer.state.withLock { s in
            let count = s.index.eventPositions.partitioningIndex { $0 >= visible }
            return count > 0 ? s.index.eventPositions[count - 1] : nil
        }
    }

    /// Up to `limit` positions of events in the ring below `visible`, in
    /// journal order: forwards from `from`, or backwards from `from` inclusive
    /// (newest first), with `start`, the checkpoint read under the same lock
    /// section: every event from `start` on was in the ring, none before it.
    /// A forward read from below `start` would miss events, so callers check it.
    func eventPositions(from: UInt64, below visible: UInt64, limit: Int,
                        backwards: Bool) -> (positions: [UInt64], start: UInt64) {
        writer.state.withLock { s in
            let all = s.index.eventPositions
            let visibleCount = all.partitioningIndex { $0 >= visible }
            if backwards {
                let upper = min(visibleCount, all.partitioningIndex { $0 > from })
                return (Array(all[max(0, upper - limit)..<upper].reversed()), s.checkpoint)
            }
            let lower = all.partitioningIndex { $0 >= from }
            return (lower < visibleCount ? Array(all[lower..<min(visibleCount, lower + limit)]) : [], s.checkpoint)
        }
    }

    /// What `stats()` reports of the writer's state, read in one lock section.
    var indexCounts: (reserved: UInt64, checkpoint: UInt64, streams: Int, events: Int) {
        writer.state.withLock { ($0.reserved, $0.checkpoint, $0.index.streams.count, $0.index.eventPositions.count) }
    }
}
