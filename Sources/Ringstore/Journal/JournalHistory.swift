/// Finds the appends the ring still holds from before its checkpoint, to
/// refill the idempotency window when the store opens.
///
/// Recovery rebuilds the window from the appends after the checkpoint, but a
/// checkpoint passes every append within seconds, and a clean close passes
/// them all: the window would be empty after most restarts, and a client
/// retrying an acknowledged `.any` append across one would store it twice. The
/// ring's bytes before the checkpoint are not erased, though: until the next
/// lap writes over them, the records are still there. So the window is refilled
/// from the most recent appends among them, then from recovery's.
///
/// Why this is sound: every record before the checkpoint was acknowledged and
/// split into its stream file, and once the checkpoint has passed a logical
/// position nothing writes that position again (a later lap writes position +
/// capacity over the same bytes, which fails the position check; a torn or
/// zero-filled overwrite fails the checksum). Even so, an entry is only a hint:
/// a retry is recognised only if all its IDs match what is stored.
///
/// Why a search: nothing records where the oldest surviving record begins. The
/// scan looks for one at each 8-byte boundary (a record must carry its own
/// position and a matching checksum; anything else is skipped), and does not
/// count the append it lands in, since it may have begun earlier. It starts
/// just before the checkpoint and goes further back (×4) only while it has not
/// found enough appends, so an open reads about as much of the ring as the
/// window needs, not the whole ring.
enum JournalHistory {
    struct Outcome {
        /// Whole appends found before the checkpoint, oldest first (at most the limit).
        var appends: [RecentAppend]
        /// The first part of an append that the checkpoint fell inside, if the scan
        /// reached the checkpoint in it: recovery holds the rest.
        var open: RecentAppend?
    }

    /// The window for a journal whose records from `checkpoint` to `end` were
    /// recovered (`recovered`: the last of their appends, oldest first).
    static func window(capacity: Int, ring: RingFile, checkpoint: UInt64, end: UInt64,
                       recovered: [RecentAppend]) -> IdempotencyWindow {
        var recovered = recovered
        var history: [RecentAppend] = []
        if capacity > recovered.count {
            let found = scan(ring, checkpoint: checkpoint, end: end, limit: capacity - recovered.count)
            history = found.appends
            // An append the checkpoint fell inside: recovery saw its second part as an append of its own.
            if let open = found.open, let first = recovered.first, first.stream == open.stream,
               open.firstVersion + UInt64(open.count) == first.firstVersion {
                recovered[0] = RecentAppend(firstID: open.firstID, stream: open.stream, firstVersion: open.firstVersion,
                                            count: open.count + first.count)
            }
        }
        return IdempotencyWindow(capacity: capacity, restoring: history + recovered)
    }

    /// The last `limit` whole appends the ring holds before `checkpoint`.
    static func scan(_ ring: RingFile, checkpoint: UInt64, end: UInt64, limit: Int) -> Outcome {
        // Bytes before this position have been written over by the records from the checkpoint on.
        let lowest = end > ring.capacity ? end - ring.capacity : 0
        guard limit > 0, checkpoint > lowest else { return Outcome(appends: [], open: nil) }
        var reach: UInt64 = 256 << 10
        while true {
            let start = max(lowest, checkpoint > reach ? checkpoint - reach : 0)
            let found = scan(ring, from: start, to: checkpoint, limit: limit)
            if found.appends.count >= limit || start == lowest { return found }
            reach = reach.multipliedReportingOverflow(by: 4).overflow ? .max : reach * 4
        }
    }

    /// Scans `[start, checkpoint)`, searching for the first record boundary
    /// (and again after anything invalid).
    private static func scan(_ ring: RingFile, from start: UInt64, to checkpoint: UInt64, limit: Int) -> Outcome {
        var recent = RecentAppends(capacity: limit)
        var position = (start + 7) & ~7
        // The append being read, once one is known to start at a record read.
        var group: RecentAppend?
        // True while looking for a record boundary; then, until the end of the append
        // found there, its records are skipped (it may have begun before).
        var searching = true
        var skipping = false
        var lastEpoch: UInt32 = 0
        func resynchronise() {
            searching = true
            group = nil
        }
        while position < checkpoint {
            let toEnd = ring.bytesToEnd(from: position)
            if toEnd < UInt64(JournalRecord.paddingSize) {
                position += toEnd  // the ring's end: a new append starts at the next lap
                group = nil
                skipping = false
                continue
            }
            let here = position
            let atLapStart = ring.physical(here) == 0
            let physical = ring.physical(here)
            let step: (length: Int, append: RecentAppend?)? = ring.withMappedBytes(physical: physical, count: Int(toEnd)) { bytes in
                switch JournalRecord.inspect(bytes, expectedPosition: here) {
                case .invalid:
                    return nil
                case .padding(let length, let epoch):
                    guard epoch >= lastEpoch else { return nil }
                    lastEpoch = epoch
                    // Appends never straddle the ring's end: the next record begins one.
                    searching = false
                    skipping = false
                    group = nil
                    return (length, nil)
                case .event(let header):
                    guard header.epoch >= lastEpoch else { return nil }
                    lastEpoch = header.epoch
                    if searching {
                        searching = false
                        skipping = !atLapStart && here != 0
                    }
                    if skipping {
                        if header.endOfAppend { skipping = false }
                        return (header.length, nil)
                    }
                    let name = UnsafeRawBufferPointer(rebasing: bytes[JournalRecord.eventHeaderSize..<(JournalRecord.eventHeaderSize + header.streamCount)])
                    if var current = group {
                        guard current.stream.utf8.elementsEqual(name),
                              header.version == current.firstVersion &+ UInt64(current.count) else { return nil }
                        current.count += 1
                        group = current
                    } else {
                        group = RecentAppend(firstID: header.id, stream: String(decoding: name, as: UTF8.self),
                                             firstVersion: header.version, count: 1)
                    }
                    guard header.endOfAppend else { return (header.length, nil) }
                    defer { group = nil }
                    return (header.length, group)
                }
            }
            guard let step else {
                // Written over, damaged, or not a record boundary: look further on.
                if !searching { resynchronise() }
                position += UInt64(JournalRecord.alignment)
                continue
            }
            if let append = step.append { recent.add(append) }
            position += UInt64(step.length)
        }
        return Outcome(appends: recent.ordered, open: position == checkpoint ? group : nil)
    }
}
