#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Writing pending records into stream files and split segments, and handing
/// checkpoints to the ``Checkpointer``.
extension Splitter {
    /// Writes `stream`'s pending records with one write: into its own file, or,
    /// if the stream has entries in the split segments, as one more entry there
    /// (moving its whole chain with them could copy megabytes at once; the mover
    /// moves chains that have a block's worth on its own schedule).
    func write(_ number: UInt32, _ pending: inout Pending) throws {
        // Forgotten only once written: after a failed write the next attempt starts over.
        guard let entry = pending.streams[number], let last = entry.positions.last else { return }
        let stream = entry.name
        try makeJournalDurable(through: last)
        let blocks = try buildBlocks(entry.positions, of: stream, from: try split.splitNext(of: stream, number: entry.number))
        if !split.takesDirectWrites(entry.number) {
            try checkSegmentRoom()
            try split.appendToSegments([.init(number: entry.number, blocks: blocks)])
        } else {
            try split.writeToFile(stream: stream, number: entry.number, blocks: blocks)
            pending.dirty.insert(number: entry.number, name: stream)
        }
        pending.streams.remove(number)
        pending.touched.insert(number: entry.number, name: stream)
    }

    /// Keeps the split segments bounded. While the mover cannot empty them (a
    /// stream file it must write cannot grow: the disk is full, a file-size
    /// limit) and they hold over twice their budget, nothing more goes into
    /// them: the splitter fails with the mover's error and retries, the ring
    /// fills, and appends wait and then fail naming the cause, as they do when
    /// the stream files themselves cannot be written. Without this the segments
    /// grew without bound and the cause stayed hidden.
    func checkSegmentRoom() throws {
        guard let failure = mover.failure else { return }
        let total = split.segments.totalBytes
        guard total > mover.policy.urgentBytes else { return }
        throw RingstoreError(failure.code,
                             "the split segments hold \(total) bytes, over twice their budget, and cannot be moved into stream files: \(failure.message)",
                             stream: failure.stream, path: failure.path, offset: failure.offset, cause: failure)
    }

    /// Makes the journal durable through the record at `position` before any of
    /// it goes into a stream file.
    ///
    /// Why: in relaxed mode the splitter (for readers, and in its main pass)
    /// follows the written cursor, ahead of the durable one. A stream file must
    /// never hold a record the journal does not durably hold — not even in the
    /// page cache, since the kernel writes pages back in no promised order and
    /// the checkpoint syncs the file: after a power cut the journal would lack
    /// event X at version v while the file held it, the next append would be
    /// given v again, and the file would shadow it. One sync covers everything
    /// written so far, so this costs at most one flush per batch of appends (and
    /// nothing in durable mode, where the splitter only sees durable records).
    func makeJournalDurable(through position: UInt64) throws {
        try journal.writer.syncNow(upTo: position + 1)
    }

    /// The blocks for records at `positions` (one stream's, in order) from version
    /// `next` on, copied from the ring.
    ///
    /// Records of versions the split storage already holds (a replay after a
    /// crash, or a reader's request that wrote them ahead) are skipped — but only
    /// once the stored events are seen to be exactly those (same ID and journal
    /// position): a stream file or segment holding another event at such a
    /// version is ahead of the journal, and skipping would hide the journal's
    /// event behind it for good.
    ///
    /// With `copies`, the records are read with `pread` into its buffer instead of
    /// through the ring's mapping (see ``RingFile/copyRecord(at:into:)``).
    func buildBlocks(_ positions: some Collection<UInt64>, of stream: String, from next: UInt64,
                     copies: RecordCopies? = nil) throws -> [StreamBlock.RawBlock] {
        var builder = StreamBlock.Builder()
        let ring = journal.ring
        var expected = next
        var skipped: [(version: UInt64, id: UUID, position: UInt64)] = []
        for position in positions {
            let physical = ring.physical(position)
            func take(_ bytes: UnsafeRawBufferPointer) throws {
                // Checksummed when scanned; below checkpoint + capacity nothing writes over it.
                guard case .event(let h) = JournalRecord.inspect(bytes, expectedPosition: position, verifyChecksum: false) else {
                    throw damagedRecord(at: position, "it changed after it was scanned")
                }
                guard h.version >= expected else {  // already in the file, to be checked below
                    skipped.append((h.version, h.id, h.position))
                    return
                }
                guard h.version == expected else {
                    throw RingstoreError(.corruptData, "stream \"\(JournalRecord.streamName(bytes, h))\": the journal record at position \(position) has version \(h.version) where \(expected) was expected next",
                                         path: ring.file.path.string, offset: RingFile.headerAreaSize + physical)
                }
                expected += 1
                let size = StreamBlock.entryHeaderSize + h.typeCount + h.metadataCount + h.dataCount
                if builder.room(for: size) { builder.current.raw.reserveCapacity(min(builder.limit, size * positions.count)) }
                let typeStart = JournalRecord.eventHeaderSize + h.streamCount
                let metadataStart = typeStart + h.typeCount
                let dataStart = metadataStart + h.metadataCount
                builder.current.add(version: h.version, position: h.position, id: h.idBytes, timestampNanoseconds: h.timestampNanoseconds,
                            json: h.json,
                            type: UnsafeRawBufferPointer(rebasing: bytes[typeStart..<metadataStart]),
                            metadata: UnsafeRawBufferPointer(rebasing: bytes[metadataStart..<dataStart]),
                            data: UnsafeRawBufferPointer(rebasing: bytes[dataStart..<(dataStart + h.dataCount)]))
            }
            if let copies {
                let count = try ring.copyRecord(at: position, into: &copies.bytes)
                copies.records += 1
                try copies.bytes.withUnsafeBytes { try take(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            } else {
                try ring.withMappedBytes(physical: physical, count: Int(ring.bytesToEnd(from: position))) { try take($0) }
            }
        }
        let blocks = builder.finish()
        if let first = skipped.first {
            // Positions rise, so versions do: the skipped records are the versions
            // `first.version ..< next`, one each, and `stored` (read forwards from the
            // first) holds them at the same offsets. Matched by offset, not by a search
            // per record: a stream that readers keep asking for is written ahead, and
            // its scanned records are then all skipped (thousands per write), which a
            // search per record made quadratic (a single hot stream read while it was
            // appended to filled the ring).
            let stored = try split.read(stream: stream, from: first.version, direction: .forwards, maxCount: skipped.count, offer: .nothing)
            for (offset, record) in skipped.enumerated() {
                let held = offset < stored.count && stored[offset].version == record.version ? stored[offset] : nil
                guard let held, held.id == record.id, held.position == record.position else {
                    let what = held.map { "event \($0.id) (journal position \($0.position))" } ?? "no event"
                    throw RingstoreError(.corruptData,
                                         "stream \"\(stream)\": its split storage holds \(what) at version \(record.version), but the journal holds event \(record.id) there (position \(record.position)): the stored events are ahead of the journal",
                                         stream: stream)
                }
            }
        }
        return blocks
    }

    /// Raw bytes pending from which on a stream's records go to its own file at
    /// a checkpoint rather than to the split segments (unless it has entries there).
    static let directBlockBytes = 16 << 10

    /// Streams written to their own files at one checkpoint at most (the
    /// largest first): each costs a random write and its metadata.
    static let maxDirectWrites = 256

    /// Raw bytes of blocks built for one segment write (bounds the memory a
    /// checkpoint over thousands of streams holds at once, and what one write
    /// puts in the device's queue).
    ///
    /// 256 KiB: a write holds its blocks as built and again encoded (the
    /// encoded buffer grows by doubling), and the checkpoint's writing is the
    /// process's peak with many streams. At 4 MiB these were 11 MiB of the
    /// heap's 79 MiB at the peak of the 100,000-stream bench (see
    /// ARCHITECTURE, "Memory"). And before each write the segments' writer
    /// waits until no more than `SequentialWriteback.inFlightBytes` is on its
    /// way to the device, so one write is what it adds to what a journal flush
    /// may find ahead of it in the device's queue: on the SD-card profile,
    /// waiting for the previous write's range, the longest one-event appends
    /// were 99-102 ms with 1 MiB writes and 86-91 ms with 256 KiB (docs/PERFORMANCE.md).
    /// The writes stay sequential, only more of them.
    static let segmentWriteBytes = 256 << 10

    /// Whether a checkpoint's writing over `list`, whose records spread over
    /// `span` bytes of the ring, reads them through the mapping (otherwise with
    /// copies, ``RecordCopies``). It copies only when both hold:
    /// - the span is more than half the ring, further than a checkpoint falls
    ///   due at, so only a pass held back (while the segments hold checkpoints,
    ///   or the splitter fell behind) copies;
    /// - each stream's records spread, on average, over more than an eighth of
    ///   the span (from its first record to its last).
    ///
    /// Why: a pass takes the streams one after the other, and with many small
    /// streams each one's few records lie all over the span, so the pass maps
    /// the whole span at once (with 100,000 streams, nearly the whole 64 MiB
    /// ring in a tenth of a second, the demo's peak resident memory) and lets go
    /// of it only as it passes the lowest position still to come. When each
    /// stream's records lie together (large appends), the pass lets go of the
    /// pages behind it as it goes (``SplitterMappedPages``), and copying would
    /// only cost. A copy costs a system call per record (about 1 µs of
    /// processor time an event, a tenth of one-event ingest's rate if every
    /// pass copied).
    func mapsPass(over list: [PendingStream], spanning span: UInt64) -> Bool {
        guard span > journal.ring.capacity / 2, !list.isEmpty else { return true }
        var reach: UInt64 = 0
        for stream in list where !stream.positions.isEmpty {
            reach += stream.positions[stream.positions.count - 1] - stream.positions[0]
        }
        return reach / UInt64(list.count) <= span / 8
    }

    /// Writes every stream's pending records: the few streams with a good
    /// block's worth into their own files, all others into the split segments
    /// (sequential writes of up to ``segmentWriteBytes``).
    ///
    /// With `pace` (a checkpoint's writing, not a close's nor one for writers
    /// short of space) it pauses between slices of the work (see
    /// `CheckpointPacing`) and between segment writes on a device whose
    /// journal syncs stall (see ``SplitWritePace``) while
    /// ``CheckpointPolicy/mayPause(_:budget:headroom:)`` allows: the same
    /// blocks and writes, spread over time.
    func writePending(_ pending: inout Pending, pace: CheckpointPace? = nil) throws {
        let now = monotonicNanoseconds()
        var pacer = CheckpointPolicy.Pacer(now: now, on: pace?.slices == true)
        var devicePacer = SplitWritePace.Pacer(start: now, startBytes: split.segments.bytesWritten.load(ordering: .relaxed),
                                               bytesPerSecond: pace?.segmentBytesPerSecond)
        if pending.scanned > 0 { try makeJournalDurable(through: pending.scanned - 1) }
        let direct = pending.streams.list.filter { $0.rawBytes >= Self.directBlockBytes && split.takesDirectWrites($0.number) }
            .sorted { $0.rawBytes > $1.rawBytes }.prefix(Self.maxDirectWrites).map(\.number)
        for stream in direct {
            // A reader waiting for its stream should not wait for the whole flush.
            if readers.hasRequests.load(ordering: .acquiring) { _ = try serveRequests(&pending) }
            try write(stream, &pending)
            if let pace, pace.slices { pauseBetweenSlices(&pacer, pace) }
        }
        var items: [SplitStore.Item] = []
        var written: [(number: UInt32, name: String)] = []
        var bytes = 0
        func flush(_ pending: inout Pending) throws {
            if !items.isEmpty { try checkSegmentRoom() }
            try split.appendToSegments(items)
            for (number, name) in written {
                pending.streams.remove(number)
                pending.touched.insert(number: number, name: name)
            }
            items.removeAll()
            written.removeAll()
            bytes = 0
        }
        // Over the streams pending when the pass starts, by number, each looked up as
        // it comes: one a reader's request wrote meanwhile is no longer pending and is
        // passed over. (A copy of the list held through the pass made the first removal
        // below copy the list itself: 48 bytes a stream, 4.8 MB at 100,000 streams.)
        // Going down the list, the pages below every stream still to come are let go
        // of (see `SplitterMappedPages`): with large appends the list is in ring order
        // and the pass keeps about one segment write's worth of the ring mapped.
        let numbers = pending.streams.list.map(\.number)
        let lowestAhead = LowestPendingPosition(pending.streams.list)
        let copies = mapsPass(over: pending.streams.list, spanning: pending.scanned - min(lowestAhead.from(0), pending.scanned))
            ? nil : RecordCopies()
        defer { if let copies { copiedRecords.add(copies.records, ordering: .relaxed) } }
        var passPages = SplitterMappedPages(releasedTo: readers.splitPosition.load(ordering: .acquiring))
        for (index, number) in numbers.enumerated() {
            guard let entry = pending.streams[number], !entry.positions.isEmpty else { continue }
            let blocks = try buildBlocks(entry.positions, of: entry.name, from: try split.splitNext(of: entry.name, number: entry.number),
                                         copies: copies)
            if !blocks.isEmpty { items.append(.init(number: entry.number, blocks: blocks)) }
            written.append((entry.number, entry.name))
            bytes += entry.rawBytes
            if bytes >= Self.segmentWriteBytes {
                try flush(&pending)
                passPages.release(before: min(lowestAhead.from(index + 1), pending.scanned), in: journal.ring)
                if readers.hasRequests.load(ordering: .acquiring) { _ = try serveRequests(&pending) }
                // All that is built is written, so a reader ringing during the pause is
                // served at once, and the pause goes on until the writes are due.
                while let pace, devicePacer.on, pauseForDevice(&devicePacer, pace) {
                    if readers.hasRequests.load(ordering: .acquiring) { _ = try serveRequests(&pending) }
                }
            }
            if let pace, pace.slices, pauseBetweenSlices(&pacer, pace), readers.hasRequests.load(ordering: .acquiring) {
                // A reader rang during the pause: what is built goes out first, so that
                // its stream's entry cannot be written twice or out of order.
                try flush(&pending)
                _ = try serveRequests(&pending)
            }
        }
        try flush(&pending)
    }

    /// Writes every pending record, publishes the new split cursor to readers,
    /// and hands the checkpoint to the ``Checkpointer``, which makes the stream
    /// files durable and then moves the journal's checkpoint there.
    func writeCheckpoint(_ pending: inout Pending, pace: CheckpointPace? = nil) throws {
        try writePending(&pending, pace: pace)
        let split = pending.scanned
        let previousSplit = readers.splitPosition.load(ordering: .acquiring)
        readers.splitPosition.store(split, ordering: .releasing)
        // Every record before `split` is in its stream file or a segment now: this process no
        // longer needs those ring pages mapped (readers of split events go to the
        // files). Dropped here rather than at the checkpoint, which follows only
        // once the files are synced (a `syncfs` over thousands of files can take
        // seconds); readers mapped some of them since the scan and the pass let go
        // (`SplitterMappedPages`). The pages stay in the page cache; an occasional
        // read maps them again.
        journal.ring.releasePages(from: previousSplit, to: split)
        pending.mappedPages.released(before: split)
        let dirty = pending.dirty.takeAll()
        let touched = pending.touched.takeAll().names
        // A stream written ahead past `split` keeps its entry: forgetting it would
        // leave its reader waiting for the next checkpoint (it did, up to a second).
        if pending.servedBeyondScan.isEmpty {
            readers.forgetAhead(touched)
        } else {
            let served = pending.servedBeyondScan
            readers.forgetAhead(touched.filter { (served[$0] ?? 0) < split })
            pending.servedBeyondScan = pending.servedBeyondScan.filter { $0.value >= split }
        }
        checkpointer.submit(.init(split: split, dirty: dirty.names, dirtyNumbers: dirty.numbers, touched: touched,
                                  segmentBoundary: self.split.segments.end))
    }
}
