import SystemPackage

/// Checks `journal.ring` of a closed store: both header slots, every record
/// from the checkpoint to the journal's end, and the records of the ring's
/// last lap before the checkpoint (they refill the retry window at open; damage
/// there is reported as harmless, see the history walk below).
///
/// Read-only: the ring is mapped read-only and walked in logical order with
/// the journal's own codec (``JournalHeader``, ``JournalRecord``).
struct JournalVerifier {
    static let fileName = "journal.ring"

    /// What the walk learnt, for `stats` and for the stream checks.
    struct Summary: Sendable {
        var header: JournalHeader?
        var headerSlotOffset: UInt64 = 0
        /// Where the journal ends: the clean close's end, or where recovery will stop.
        var end: UInt64 = 0
        var recordsAfterCheckpoint = 0
        var historyRecords = 0
        var paddingRecords = 0
        var fileBytes: UInt64 = 0
        var bytesChecked: UInt64 = 0
        var recoveryStopReason: String?
        /// Streams whose version 0 is in the ring's whole records: the journal holds them
        /// whole (what opening asks of a stream file whose header a cut tore). Collected
        /// only when the store was not closed cleanly.
        var streamsFromVersionZero: Set<String> = []
    }

    let directory: FilePath

    func verify(into problems: inout [MaintenanceProblem]) -> Summary {
        var summary = Summary()
        let path = directory.appending(Self.fileName)
        func problem(_ offset: UInt64?, _ what: String, harmless: Bool = false) {
            problems.append(MaintenanceProblem(file: Self.fileName, offset: offset, what: what, harmless: harmless))
        }
        let area: [UInt8]
        do { area = try RingFile.readHeaderArea(at: path) } catch {
            problem(nil, "cannot read the journal: \(error)")
            return summary
        }
        // Both slots: the older one is the fallback if the newer one is ever torn.
        var slots: [(JournalHeader, UInt64)] = []
        var emptySlots: [UInt64] = []
        for offset in JournalHeader.slotOffsets {
            let start = Int(offset)
            let slot = start < area.count ? area[start..<min(area.count, start + JournalHeader.slotSize)] : []
            switch JournalHeader.decode(slot) {
            case .success(let header): slots.append((header, offset))
            case .failure(.empty): emptySlots.append(offset)
            case .failure(let error): problem(offset, "header slot: \(error)")
            }
        }
        // The rest of the header area is never written: anything there but zeros is damage (outside any record).
        let slotRanges = JournalHeader.slotOffsets.map { Int($0)..<(Int($0) + JournalHeader.slotSize) }
        if let stray = area.indices.first(where: { i in area[i] != 0 && !slotRanges.contains { $0.contains(i) } }) {
            problem(UInt64(stray), "the header area outside the two slots is not zero", harmless: true)
        }
        guard let (header, slotOffset) = slots.max(by: { $0.0.sequence < $1.0.sequence }) else {
            problem(0, "no valid header slot")
            return summary
        }
        if header.sequence > 0 { for offset in emptySlots { problem(offset, "header slot is empty but the journal has written \(header.sequence + 1) headers") } }
        if slots.count == 2, slots[0].0.capacity != slots[1].0.capacity {
            problem(slots[1].1, "header slots disagree on the ring's capacity (\(slots[0].0.capacity) and \(slots[1].0.capacity))")
        }
        summary.header = header
        summary.headerSlotOffset = slotOffset
        let ring: RingFile
        do { ring = try RingFile.open(at: path, capacity: header.capacity) } catch {
            problem(nil, "\(error)")
            return summary
        }
        summary.fileBytes = RingFile.headerAreaSize + header.capacity
        let capacity = header.capacity
        let checkpoint = header.checkpoint
        func fileOffset(_ position: UInt64) -> UInt64 { RingFile.headerAreaSize + ring.physical(position) }

        // The journal's end: a clean close recorded it; otherwise recovery decides.
        if header.closedCleanly {
            summary.end = header.endAtClose
            if header.endAtClose < checkpoint || header.endAtClose - checkpoint > capacity {
                problem(slotOffset, "header says the journal ended at \(header.endAtClose) but its checkpoint is \(checkpoint)")
                summary.end = checkpoint
            }
        } else {
            let outcome = JournalRecovery.scan(ring, checkpoint: checkpoint, headerEpoch: header.epoch)
            summary.end = outcome.end
            summary.recoveryStopReason = outcome.summary.stopReason
            problem(slotOffset, "the store was not closed cleanly: opening it will recover the journal up to position \(outcome.end) (\(outcome.summary.stopReason))",
                    harmless: true)
        }

        /// Walks whole records over `[from, to)`; returns the number of records.
        /// Every invalid record is reported once (`harmless` as given); the walk
        /// resumes at the next 8-byte boundary holding a valid record with its own position.
        func walk(from: UInt64, to: UInt64, what: String, harmless: Bool = false) -> Int {
            var position = from
            var records = 0
            var lastEpoch: UInt32 = 0
            while position < to {
                let toEnd = ring.bytesToEnd(from: position)
                if toEnd < UInt64(JournalRecord.paddingSize) { position += toEnd; continue }
                let (inspection, startsStream) = ring.withMappedBytes(physical: ring.physical(position), count: Int(toEnd)) { bytes in
                    let inspection = JournalRecord.inspect(bytes, expectedPosition: position)
                    // Asked of unclean stores only (a stream file whose header a cut tore).
                    guard !header.closedCleanly, case .event(let event) = inspection, event.version == 0 else { return (inspection, nil as String?) }
                    return (inspection, JournalRecord.streamName(bytes, event))
                }
                if let startsStream { summary.streamsFromVersionZero.insert(startsStream) }
                switch inspection {
                case .event(let event):
                    if event.epoch < lastEpoch {
                        problem(fileOffset(position), "\(what) record at position \(position) is from session \(event.epoch) after session \(lastEpoch)",
                                harmless: harmless)
                    }
                    lastEpoch = max(lastEpoch, event.epoch)
                    records += 1
                    summary.bytesChecked += UInt64(event.length)
                    position += UInt64(event.length)
                case .padding(let length, _):
                    summary.paddingRecords += 1
                    position += UInt64(length)
                case .invalid(let reason):
                    problem(fileOffset(position), "\(what) record at position \(position): \(reason)", harmless: harmless)
                    guard let next = nextRecord(after: position, before: to) else { return records }
                    position = next
                }
            }
            if position != to {
                problem(fileOffset(to), "\(what) records end at position \(position), not at \(to)", harmless: harmless)
            }
            return records
        }
        /// The next position after `position` (at an 8-byte boundary, before `limit`) where a valid record starts.
        func nextRecord(after position: UInt64, before limit: UInt64) -> UInt64? {
            var probe = position + UInt64(JournalRecord.alignment)
            while probe < limit {
                let toEnd = ring.bytesToEnd(from: probe)
                if toEnd >= UInt64(JournalRecord.paddingSize) {
                    let found = ring.withMappedBytes(physical: ring.physical(probe), count: Int(toEnd)) { bytes -> Bool in
                        if case .invalid = JournalRecord.inspect(bytes, expectedPosition: probe) { return false }
                        return true
                    }
                    if found { return probe }
                }
                probe += UInt64(JournalRecord.alignment)
            }
            return nil
        }

        // The last lap before the checkpoint: its oldest records were partly written over
        // (by the current lap, and by the zeros a flush adds to its last page), so the
        // walk starts at the first whole record; before the first lap it starts at 0.
        let lowest = summary.end > capacity ? summary.end - capacity : 0
        if checkpoint > lowest {
            var start: UInt64? = lowest
            if lowest > 0 {
                start = nil
                var probe = lowest
                while probe < checkpoint {
                    let toEnd = ring.bytesToEnd(from: probe)
                    if toEnd >= UInt64(JournalRecord.paddingSize) {
                        let valid = ring.withMappedBytes(physical: ring.physical(probe), count: Int(toEnd)) { bytes -> Bool in
                            if case .invalid = JournalRecord.inspect(bytes, expectedPosition: probe) { return false }
                            return true
                        }
                        if valid { start = probe; break }
                    }
                    probe += UInt64(JournalRecord.alignment)
                }
                if let found = start, found > lowest {
                    problem(fileOffset(lowest), "\(found - lowest) bytes of the ring's previous lap before the oldest whole record (position \(found)) were written over",
                            harmless: true)
                }
            }
            // Damage there is harmless: every record before the checkpoint is in its stream
            // file (checked below), the history only refills the retry window, whose
            // entries are hints, and a crash leaves it torn in the normal course of things:
            // the journal writes past its durable end over the oldest history, and writes
            // a power cut interrupted stay there, torn, after a later clean close.
            if let start {
                summary.historyRecords = walk(from: start, to: checkpoint,
                                              what: "journal history (before the checkpoint, a copy that only refills the retry window)",
                                              harmless: true)
            }
        }
        if summary.end > checkpoint {
            summary.recordsAfterCheckpoint = walk(from: checkpoint, to: summary.end, what: "journal")
        }
        return summary
    }
}
