import Synchronization

/// The mover's sweeps: emptying the oldest segment into stream files, a
/// batch at a time, and deleting it once nothing in it is left behind (see
/// ``SegmentMover`` for when and in what order of writes and syncs).
extension SegmentMover {
    /// Moves and deletes the oldest segment if the segments are over budget and
    /// a checkpoint covers it. Returns whether it did.
    func moveOldestSegmentIfDue() throws -> Bool {
        guard var sweep = try sweepOfOldestSegmentIfDue() else { return false }
        try sweepToTheEnd(&sweep)
        return true
    }

    /// A sweep of the oldest segment, if the segments are over budget and a
    /// checkpoint covers it.
    func sweepOfOldestSegmentIfDue() throws -> Sweep? {
        let segments = store.segments
        let sizes = segments.segmentSizes()
        let total = sizes.reduce(0) { $0 + $1.bytes }
        let boundary = segments.checkpointedBoundary
        guard total > policy.budgetBytes, let oldest = sizes.first, oldest.number < boundary.segment else { return nil }
        return try startSweep(oldest.number, urgent: total > policy.urgentBytes)
    }

    /// Moves every segment, the current one too, into stream files and deletes
    /// them (tests use it to put everything in stream files).
    func moveEverything() throws {
        for (number, _) in store.segments.segmentSizes() { try moveSegment(number) }
    }

    /// Moves every stream with entries in segment `number` into its file, syncs
    /// them, checks nothing in the segment is left behind, and deletes it.
    ///
    /// Each such stream takes its entries in newer segments along, up to the
    /// newest segment within the budget counted from the oldest
    /// (``throughSegment(emptying:)``), unless its chain is longer than
    /// ``Policy/chainMoveBytes``; a stream whose entries here its file holds
    /// already (an earlier move took them) is passed over. Why: a move costs
    /// a few device writes per stream whatever it carries (the file's data
    /// page, its index, the inodes in the file system's journal: about 3.5 on
    /// the SD-card profile), and every segment holds a little of nearly every
    /// stream when streams are many; moving one segment's share at a time
    /// paid those writes once per segment, taking a stream's entries through
    /// the budget pays them once for several, and the newer segments it
    /// emptied are then deleted without writing again. The cost: the stream
    /// files may hold up to the budget again before the segments are deleted.
    ///
    /// `urgent` (no pauses) is decided once, when the segment's move begins
    /// (only a hold of the checkpoints, ``holdsCheckpoints``, lifts the pauses meanwhile).
    /// Asking again after every batch was tried: with 100,000 streams a paced
    /// segment takes a minute or more, the segments pass twice their budget
    /// meanwhile, and the rest then ran unpaced, which cost a quarter of the
    /// ingest rate and 60 % more device writes while the segments still grew
    /// (docs/PERFORMANCE.md, "Many small streams").
    func moveSegment(_ number: UInt32, urgent: Bool = true) throws {
        var sweep = try startSweep(number, urgent: urgent)
        try sweepToTheEnd(&sweep)
    }

    /// A sweep of one segment in progress: its entries by stream, how many
    /// streams are moved, and the file ends their moves saw. Only the mover's
    /// thread (or a test calling in) holds one.
    struct Sweep {
        let segment: UInt32
        /// Whether it moves without pauses (decided once, when it begins).
        let urgent: Bool
        /// How far each stream's entries are taken along (``SegmentMover/throughSegment(emptying:)``, when it begins).
        let through: UInt32
        fileprivate let located: [SplitSegments.Located]
        /// Whether `located` lists every entry the segment will ever hold (the
        /// splitter had moved on to a newer segment before it was walked).
        fileprivate let locatedWhole: Bool
        /// A run of `located` per stream.
        fileprivate let runs: [Range<Int>]
        fileprivate var nextRun = 0
        fileprivate var fileEnds = StreamFileEnds()
        /// Whether checkpoints waited for the mover when the last batch began.
        fileprivate var lastBatchHeld = false

        /// Whether the mover pauses after the last batch: not if the sweep is
        /// urgent, nor while checkpoints wait for the mover.
        var pausesAfterBatch: Bool { !urgent && !lastBatchHeld }
    }

    /// Lists segment `number`'s entries by stream (one walk of it) for a sweep.
    func startSweep(_ number: UInt32, urgent: Bool) throws -> Sweep {
        let whole = !store.segments.isBeingWritten(number)  // asked before the walk: it then sees every entry
        let located = try store.segments.locateEntries(in: number)
        var runs: [Range<Int>] = []
        var runStart = 0
        for i in located.indices where i + 1 == located.count || located[i + 1].stream != located[i].stream {
            runs.append(runStart..<(i + 1))
            runStart = i + 1
        }
        var sweep = Sweep(segment: number, urgent: urgent, through: throughSegment(emptying: number), located: located,
                          locatedWhole: whole, runs: runs)
        // The ends the last sweep saw are lower bounds of the files' ends now (see
        // ``SegmentMover/carriedFileEnds``); this sweep's moves raise them.
        sweep.fileEnds = carriedFileEnds.withLock { carried in
            defer { carried = StreamFileEnds() }  // taken, not shared: the sweep adds to it
            return carried
        }
        return sweep
    }

    /// Runs `sweep` to its end, pausing between batches unless it is urgent
    /// (returns early, the segment kept, if the mover stops).
    private func sweepToTheEnd(_ sweep: inout Sweep) throws {
        while !stopping {
            let started = monotonicNanoseconds()
            let stallsAtStart = journalStalls()
            if try continueSweep(&sweep) { return }
            sleepAfterBatch(startedAt: started, stallsAtStart: stallsAtStart, pausing: sweep.pausesAfterBatch)
        }
    }

    /// Moves the next batch of the sweep's streams and syncs them; once every
    /// stream is moved, checks that nothing in the segment is left behind and
    /// deletes it. Returns whether the sweep is finished. `heldLanes`: the
    /// threads a batch moved while checkpoints wait for the mover takes
    /// (tests; ``Policy/heldLanes`` otherwise).
    func continueSweep(_ sweep: inout Sweep, heldLanes: Int? = nil) throws -> Bool {
        let segments = store.segments
        let number = sweep.segment
        if sweep.nextRun < sweep.runs.count {
            // While checkpoints wait for the mover, each stream takes its whole chain
            // along: a move costs the device a few writes per stream whatever it
            // carries, so one pass over the streams then frees every segment it can.
            let held = holdsCheckpoints
            sweep.lastBatchHeld = held
            let through = held ? UInt32.max : sweep.through
            let batch = sweep.runs[sweep.nextRun..<min(sweep.runs.count, sweep.nextRun + batchLimit(held: held))]
            let moved = try moveBatch(Array(batch), of: sweep.located, segment: number, through: through,
                                      lanes: held ? heldLanes ?? policy.heldLanes : 1)
            for (stream, end) in moved.fileEnds { sweep.fileEnds[stream] = end }
            try syncMoved(moved.names)
            sweep.nextRun += batch.count
            if sweep.nextRun < sweep.runs.count { return false }
        }
        // A segment the splitter no longer writes holds what the sweep's walk listed;
        // one it still writes is walked again for the entries added since.
        let lastVersions = sweep.locatedWhole ? SplitSegments.lastVersions(in: sweep.located) : try segments.lastVersions(in: number)
        try checkMoved(number, lastVersions: lastVersions, fileEnds: &sweep.fileEnds)
        carriedFileEnds.withLock { carried in
            carried = sweep.fileEnds.span <= Self.carriedFileEndsLimit ? sweep.fileEnds : StreamFileEnds()
        }
        sweep.fileEnds = StreamFileEnds()
        segments.remove(number)
        segmentsDeleted.add(1, ordering: .relaxed)
        segmentDeleted()
        return true
    }

    /// Moves the streams of one batch of a sweep of segment `number` (each
    /// `run` of `located` is one stream's entries there) on `lanes` threads,
    /// the mover's own among them. Returns the names of the streams moved
    /// (their files are to be synced) and the file ends the moves saw, by
    /// stream number.
    ///
    /// Why lanes while checkpoints wait for the mover: the ingest then waits
    /// for the sweep, the splitter has nothing to do, and on a fast disk a
    /// move is bound by the processor (opening or creating the file, joining
    /// and compressing the entries: with 100,000 streams about 200 µs a
    /// stream, the mover's one thread busy 85 % of the time and the other
    /// processor idle for the whole hold). The streams of a batch are
    /// independent: each move holds its stream's stripe and open lock, as it
    /// does beside readers; the batch's one sync and everything after it are
    /// unchanged, on the mover's thread.
    func moveBatch(_ runs: [Range<Int>], of located: [SplitSegments.Located], segment number: UInt32,
                   through: UInt32, lanes: Int) throws -> (names: MovedStreams, fileEnds: [(stream: UInt32, end: UInt64)]) {
        let outcomes = Mutex<(names: MovedStreams, fileEnds: [(stream: UInt32, end: UInt64)])>((MovedStreams(), []))
        let (store, policy) = (store, policy)
        try ParallelLanes.run(count: runs.count, lanes: lanes, owner: owner, name: "rs-mover-lane", background: true) { _, item in
            let run = runs[item]
            let stream = located[run.lowerBound].stream
            let segments = store.segments
            guard let name = store.catalog.name(of: stream) else {
                throw RingstoreError(.corruptData, "split segment \(SplitSegment.fileName(of: number)) holds entries of stream number \(stream), which the catalog does not name",
                                     path: segments.folder.appending(SplitSegment.fileName(of: number)).string)
            }
            let whole = through > number && (segments.head(of: stream)?.rawBytes ?? .max) <= policy.chainMoveBytes
            var end: UInt64?
            let moved = try store.move(stream: name, number: stream, throughSegment: whole ? through : number,
                                       located: (number, located[run]), fileEnd: { end = $0 })
            outcomes.withLock { o in
                if let moved { o.names.add(name, number: stream, moved) }
                if let end { o.fileEnds.append((stream, end)) }
            }
        }
        return outcomes.withLock { $0 }
    }

    /// The newest segment whose entries a stream moved while segment `number`
    /// is emptied takes along: the newest one such that the segments from the
    /// oldest through it hold at most the budget (at least `number`).
    func throughSegment(emptying number: UInt32) -> UInt32 {
        var through = number
        var bytes: UInt64 = 0
        for segment in store.segments.segmentSizes() {
            bytes += segment.bytes
            guard bytes <= policy.budgetBytes else { break }
            through = max(through, segment.number)
        }
        return through
    }

    /// Throws unless every entry of segment `number` (`lastVersions`: the last
    /// version of each stream in it) lies below its stream file's end: below
    /// an end seen before (`fileEnds`, by stream number: this sweep's moves'
    /// or a carried one; an end only grows, so each is a lower bound), else
    /// below the end looked up now (opening a file evicted from the cache
    /// meanwhile: with 100,000 streams, a third of the mover's time when
    /// every end was), which then joins `fileEnds`.
    private func checkMoved(_ number: UInt32, lastVersions: [UInt32: UInt64], fileEnds: inout StreamFileEnds) throws {
        for (stream, lastVersion) in lastVersions {
            if let seen = fileEnds[stream], lastVersion < seen { continue }
            guard let name = store.catalog.name(of: stream) else { continue }
            let end = try store.movedNextVersion(of: name)
            fileEndsLookedUp.add(1, ordering: .relaxed)
            fileEnds[stream] = end
            guard lastVersion < end else {
                throw RingstoreError(.ioError, "split segment \(SplitSegment.fileName(of: number)) still holds version \(lastVersion) of stream \"\(store.catalog.name(of: stream) ?? "#\(stream)")\" after moving it; keeping the segment",
                                     path: store.segments.folder.appending(SplitSegment.fileName(of: number)).string)
            }
        }
    }
}
