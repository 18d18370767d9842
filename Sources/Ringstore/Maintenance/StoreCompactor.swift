import Glibc
import Synchronization
import SystemPackage
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Options of `ringstore-admin compact`.
package struct CompactOptions: Sendable {
    /// Compute and report what would be reclaimed; write nothing.
    package var dryRun = false
    /// Leave damaged stream files as they are (copied unchanged) instead of refusing.
    package var skipDamaged = false
    /// About how many bytes of split-segment entries one pass over the segments gathers
    /// (the bulk of the compaction's memory; each pass reads every segment).
    package var memoryBudget: UInt64 = 64 << 20
    /// LZ4 acceleration of the rewritten blocks (1 is LZ4's default, and the engine's;
    /// higher is faster and compresses less).
    package var acceleration: Int32 = 1
    /// Most temporary files the routing walk (beside the verification) sends segment entries to when they do not
    /// fit the budget (``SegmentSpill``); 0: none, one pass per range instead (tests set it).
    var spillRanges = SegmentSpill.maxFiles
    /// When the store gets a stream-file dictionary, and which streams use it (tests lower it).
    var dictionaryPolicy = DictionaryPolicy()
    /// Threads that rewrite streams at once (each stream is its own new file;
    /// the work is decompressing, compressing and writing them). Default: one
    /// per processor, at most four.
    package var threads = CompactOptions.defaultThreads
    package static var defaultThreads: Int { max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) }
    package init(dryRun: Bool = false, skipDamaged: Bool = false, memoryBudget: UInt64 = 64 << 20, acceleration: Int32 = 1,
                 threads: Int = CompactOptions.defaultThreads) {
        self.dryRun = dryRun
        self.skipDamaged = skipDamaged
        self.memoryBudget = memoryBudget
        self.acceleration = acceleration
        self.threads = threads
    }
}

/// What a compaction did (or, dry, would do).
package struct CompactSummary: Sendable {
    package var dryRun = false
    /// Files compaction rewrites (stream and index files, split segments, the global index).
    package var rewritableBytesBefore: UInt64 = 0
    package var rewritableBytesAfter: UInt64 = 0
    /// The whole store (the journal and the catalog are kept as they are).
    package var totalBytesBefore: UInt64 = 0
    package var totalBytesAfter: UInt64 = 0
    package var streamsBefore = 0
    package var streamsAfter = 0
    /// Of ``streamsAfter``, those written into bucket files (small streams, with
    /// ``Configuration/streamBuckets``), not files of their own.
    package var streamsBucketed = 0
    package var eventsBefore = 0
    package var eventsAfter = 0
    package var blocksBefore = 0
    package var blocksAfter = 0
    /// Of ``blocksAfter``, full-size old blocks copied byte for byte (not recompressed).
    package var blocksReused = 0
    package var segmentsBefore = 0
    /// Sequential passes over the split segments: one that routes the entries of every range of
    /// streams to temporary files, or (dry runs, very many ranges) one per range.
    package var segmentPasses = 0
    /// Ranges of streams whose segment entries fit the memory budget, gathered one at a time.
    package var streamRanges = 0
    /// Stream files left as they were (`--skip-damaged`).
    package var skipped: [String] = []
    package var seconds: Double = 0
    /// Seconds of each phase, in order: `verify` (the verification with the routing
    /// beside it, and a recovering open when the store was not closed cleanly),
    /// `rewrite` (the store's open and the new stream files), `global index` (its
    /// rewrite, beside the new files' early sync, and the store's close), `sync`
    /// (the commit's `syncfs` and folder syncs) and `switch` (the commit, the swap
    /// and the old files' removal). A dry run has the first three.
    package var phases: [(name: String, seconds: Double)] = []
    /// Threads that rewrote streams (``CompactOptions/threads``, fewer if the system refused some).
    package var threads = 1
    /// Bytes read from the store's files: the verification pass (all of them), the
    /// routing walk beside it (the segments again; ``SegmentRouting``) and the
    /// rewrite (the stream files and segment entries holding kept events).
    package var bytesRead: UInt64 = 0
    /// The input's rate: the store's bytes (before) per second of the whole run.
    package var inputBytesPerSecond: Double { seconds > 0 ? Double(totalBytesBefore) / seconds : 0 }

    package var streamsRemoved: Int { streamsBefore - streamsAfter }
    package var eventsRemoved: Int { eventsBefore - eventsAfter }
}

/// Where a test can stop a compaction as if the process died there (see ``CompactionCrashPoints``).
enum CompactionStep: String, CaseIterable, Sendable {
    case filesWritten = "files written, not synced"
    case filesSynced = "files synced, not committed"
    case committed = "committed, nothing swapped"
    case oldPartMoved = "an old part moved aside, its replacement not in place"
    case swapped = "everything swapped, marker still there"
}

extension MaintenanceSession {
    /// Rewrites the store without what reads no longer show (see ``CompactionPlan``),
    /// every stream's events in full-size blocks in its own file (with
    /// ``Configuration/streamBuckets``, a small stream's in a chain of the new bucket
    /// files), the split segments and old bucket chains emptied into them, and a global
    /// index of what remains; then
    /// switches to the new files crash-safely (``CompactionSwitch``).
    ///
    /// Refuses (`.corruptData`, naming every finding) a store that does not
    /// verify clean, unless the only damage is in stream files and
    /// `skipDamaged` is set: those files are then kept byte for byte.
    package func compact(options: CompactOptions,
                         progress: @escaping (String, Int, Int) -> Void = { _, _, _ in }) async throws -> CompactSummary {
        let started = ContinuousClock.now
        var summary = CompactSummary()
        var phases = PhaseClock(started: started)
        summary.dryRun = options.dryRun
        let fresh = path.appending(CompactionSwitch.newFolder)
        // What an earlier compaction of this session left (one that failed part-way) is settled
        // here, as an open would: this session's opens leave `compact.new/` to this compaction.
        _ = try CompactionSwitch.finishIfPending(in: path)
        // Not dry: the segment entries are gathered during the verification, by a walk of their own over the segments
        // (``SegmentRouting``), into memory or temporary files under `compact.new/`, created here.
        func verifying() throws -> (VerifyReport, SegmentRouting?) {
            var verifier = StoreVerifier(directory: path) { progress("verify", $0, $1) }
            guard !options.dryRun else { return (verifier.verify(), nil) }
            try CompactionSwitch.removeTree(fresh)
            try StorageDirectory.create(fresh)
            let routing = SegmentRouting(folder: fresh.appending(SegmentSpill.folderName), budget: options.memoryBudget,
                                         maxFiles: options.spillRanges)
            verifier.segmentSink = routing
            return (verifier.verify(), routing)
        }
        var (report, routing) = try verifying()
        summary.bytesRead = report.bytesRead + (routing?.bytesRead ?? 0)
        // A store that was not closed cleanly is recovered first (open, split, close), then
        // verified again: afterwards every event is in stream files or segments, which is
        // all the rewrite reads. Only harmless findings (a tail opening cuts) allow that.
        // (Its first verification gathered nothing: ``SegmentRouting`` declines such a store.)
        if !report.inventory.closedCleanly && report.problems.isEmpty {
            let recovering = try await openStore()
            try await recovering.close()
            (report, routing) = try verifying()
            summary.bytesRead += report.bytesRead + (routing?.bytesRead ?? 0)
        }
        let before = report.inventory
        summary.rewritableBytesBefore = before.rewritableBytes
        summary.totalBytesBefore = before.totalBytes
        summary.streamsBefore = before.streams.count
        summary.eventsBefore = before.events
        summary.blocksBefore = before.blocks + before.bucketEntries + before.segmentEntries
        summary.segmentsBefore = before.segments

        // Damage: refuse, or (stream files only) keep those files as they are. The stream
        // files' dictionary is no stream file: every block compressed against it needs it.
        let problems = report.problems
        var damagedFiles = Set<String>()
        var damagedStreams = Set<String>()
        if !problems.isEmpty {
            // Nor are bucket files: each holds many streams' chains, and the new store gets new ones.
            let dictionaryFile = "\(StreamNaming.folder)/\(StreamFileDictionary.fileName)"
            let buckets = "\(StreamNaming.folder)/\(StreamBuckets.folderName)/"
            let elsewhere = problems.filter {
                !$0.file.hasPrefix(StreamNaming.folder + "/") || $0.file == dictionaryFile || $0.file.hasPrefix(buckets)
            }
            guard options.skipDamaged, elsewhere.isEmpty else {
                let listed = (elsewhere.isEmpty ? problems : elsewhere).prefix(20).map { "  \($0)" }.joined(separator: "\n")
                let more = problems.count > 20 ? "\n  … \(problems.count - 20) more" : ""
                let hint = elsewhere.isEmpty ? " (--skip-damaged leaves damaged stream files as they are and compacts the rest)" : ""
                // Only the temporary files of the walk were written: none is left.
                if !options.dryRun { try? CompactionSwitch.removeTree(fresh) }
                throw RingstoreError(.corruptData, "store \(directory) does not verify clean; nothing was changed\(hint):\n\(listed)\(more)",
                                     path: directory)
            }
            for problem in problems {
                damagedFiles.insert(problem.file.hasSuffix(".idx") ? String(problem.file.dropLast(4)) : problem.file)
                if let stream = problem.stream { damagedStreams.insert(stream) }
            }
            summary.skipped = damagedFiles.sorted()
        }

        let gathered: SegmentRouting.Gathered
        do {
            gathered = try routing?.finish() ?? .none
        } catch {
            try? CompactionSwitch.removeTree(fresh)
            throw error
        }
        phases.end("verify", in: &summary)
        // The walk also found what the open would learn from the segments: it does not walk them again.
        let store = try await openStore(prepared: routing?.prepared)
        // The mover must not move entries (and delete segments) while they are read.
        await store.splitter.mover.stop()
        // Each stream's file (or that it has none) and where it ends, as verified: usable unless
        // damage is being skipped or the mover, between the open and its stop, emptied a segment
        // into files (it may have created some; entries it copied without deleting their segment
        // are still read there, so a file's verified end plus the segments still hold everything).
        let verifiedFiles: [VerifiedStreamFile?]? = problems.isEmpty && store.splitter.mover.segmentsDeleted.load(ordering: .relaxed) == 0
            ? before.fileByNumber : nil
        // Small blocks against a dictionary, for a store large enough whose streams
        // are many (see ``CompactionWriter/dictionaryBlockBytes``, ``DictionaryPolicy``).
        // Damaged files carried over as they are keep their blocks' dictionary: the old one.
        let policy = options.dictionaryPolicy
        let oldDictionary = store.split.directory.dictionary
        let dictionary: CompressionDictionary?
        if !damagedFiles.isEmpty, let oldDictionary {
            dictionary = oldDictionary
        } else {
            dictionary = configuration.compression && policy.wantsDictionary(rawBytes: before.rawBytes, streams: before.streams.count)
                ? await Self.sampleDictionary(of: store) : nil
        }
        let writer = CompactionWriter(root: fresh, dryRun: options.dryRun, compress: configuration.compression,
                                      acceleration: options.acceleration, dictionary: dictionary,
                                      oldDictionary: oldDictionary, totalEvents: before.events, policy: policy,
                                      intoBuckets: configuration.streamBuckets)
        do {
            try rewrite(store: store, writer: writer, damagedFiles: damagedFiles, damagedStreams: damagedStreams,
                        intactStreams: Set(before.streams.map(\.name)), segmentBytes: before.segmentBytesByNumber, verifiedFiles: verifiedFiles,
                        budget: options.memoryBudget, threads: options.threads, gathered: gathered, summary: &summary,
                        phases: &phases, progress: progress)
        } catch {
            try? await store.close()
            throw error
        }
        // Closing also closes the old stream files, which are unlinked after the switch
        // (see `StreamDirectory.closeAll`).
        try await store.close()
        phases.end("global index", in: &summary)
        if !options.dryRun {
            try CompactionCrashPoints.reach(.filesWritten, path)
            // One syncfs covers every new file and folder entry (thousands of fdatasyncs would
            // cost a journal commit each); then the folders the switch renames within.
            try StorageDirectory.syncFileSystem(containing: fresh)
            try StorageDirectory.sync(fresh)
            try StorageDirectory.sync(path)
            phases.end("sync", in: &summary)
            try CompactionCrashPoints.reach(.filesSynced, path)
            try CompactionSwitch.commit(in: path)
            try CompactionCrashPoints.reach(.committed, path)
            try CompactionSwitch.rollForward(in: path)
            phases.end("switch", in: &summary)
        }
        // The new files are what the writer wrote (no `stat` of each of them); the journal and catalog are kept.
        summary.rewritableBytesAfter = writer.bytesWritten
        summary.totalBytesAfter = summary.totalBytesBefore - summary.rewritableBytesBefore + writer.bytesWritten
        summary.seconds = (ContinuousClock.now - started).seconds
        return summary
    }

    /// Events ``sampleDictionary(of:)`` reads at most (it stops once it has ``CompressionDictionary/maxBytes``).
    static let dictionarySampleEvents = 256

    /// The new store's ``StreamFileDictionary``: the first events `$all` shows
    /// (so nothing deleted, truncated or expired goes into it), up to
    /// ``CompressionDictionary/sampleBytesPerBlock`` of each as it lies in a block;
    /// nil for a store without events. The same store gives the same bytes, so
    /// compacting it again keeps the dictionary and copies its blocks as they are.
    /// A read that fails (a damaged file that `--skip-damaged` keeps as it is)
    /// ends the sample there: the rewrite reports real damage itself.
    static func sampleDictionary(of store: EventStore) async -> CompressionDictionary? {
        var blocks: [StreamBlock.RawBlock] = []
        var bytes = 0
        do {
            for try await event in store.readAll(maxCount: dictionarySampleEvents) {
                var builder = StreamBlock.Builder(limit: .max)
                builder.add(event)
                blocks += builder.finish()
                bytes += min(blocks.last?.raw.count ?? 0, CompressionDictionary.sampleBytesPerBlock)
                if bytes >= CompressionDictionary.maxBytes { break }
            }
        } catch {}
        return CompressionDictionary.sample(of: blocks)
    }

    /// Writes the new files from the open `store` (see ``compact(options:progress:)``).
    ///
    /// Memory stays within about `budget` whatever the store's size: streams are
    /// taken in ranges of catalog numbers whose split-segment entries fit it
    /// (``SegmentHarvest``: read from what the routing walk beside the verification `gathered`, or,
    /// when it gathered nothing, one sequential pass over the segments per range), and
    /// the global index is written by filtering the old one in one pass
    /// (the versions each stream keeps form a range), so no table of events is built.
    ///
    /// `verifiedFiles`, by catalog number: each stream's file as verification read it, nil for
    /// a stream without one (the whole table nil: not known, each stream is looked up in the store).
    private func rewrite(store: EventStore, writer: CompactionWriter, damagedFiles: Set<String>, damagedStreams: Set<String>,
                         intactStreams: Set<String>, segmentBytes: [UInt64], verifiedFiles: [VerifiedStreamFile?]?, budget: UInt64, threads: Int, gathered: SegmentRouting.Gathered,
                         summary: inout CompactSummary, phases: inout PhaseClock, progress: (String, Int, Int) -> Void) throws {
        if !writer.dryRun {
            // `writer.root` was created (empty) before the verification.
            try StorageDirectory.create(writer.root.appending(StreamNaming.folder))
            try StorageDirectory.create(writer.root.appending("split"))
            // Created empty: its folder comes with the first bucket file. Nothing in them counts
            // before the commit, which the one `syncfs` of every new file precedes: no sync per file.
            if writer.intoBuckets {
                writer.buckets = try StreamBuckets(streams: writer.root.appending(StreamNaming.folder), syncsNewFiles: false,
                                                   combinedWriteBytes: StreamBuckets.compactionWriteBytes)
            }
        }
        try writer.writeDictionary()
        let names = store.catalog.allNames()
        // The store learns each stream's end from the verification (no lookup of its file).
        let known = verifiedFiles.map { Array($0.prefix(names.count)) } ?? []
        for (number, file) in known.enumerated() { store.split.rememberVerified(UInt32(number), fileNext: file?.nextVersion ?? 0) }
        var keep = [CompactionWriter.KeptVersions](repeating: .none, count: names.count)
        var sizes = Array(segmentBytes.prefix(names.count))
        sizes += repeatElement(0, count: names.count - sizes.count)
        // Lane 0 writes with `writer` itself; the others with lanes of it, added to it at the end.
        let lanes = (0..<max(1, threads)).map { CompactionLane(writer: $0 == 0 ? writer : writer.lane()) }
        let ranges = SegmentHarvest.ranges(segmentBytes: sizes, budget: budget)
        summary.streamRanges = ranges.count
        // Verification's walk gathered the entries (one pass, shared with it), or one pass per range with entries.
        switch gathered {
        case .none: break
        case .memory, .spill: summary.segmentPasses = 1
        }
        // One arena serves every range read from the spill, filled again each time.
        var spare: [UInt8] = []
        // For the blocks compressed against their segment's dictionary.
        let dictionaries = SegmentHarvest.dictionaries(in: path.appending("split"))
        for range in ranges {
            let wanted = range.reduce(UInt64(0)) { $0 + sizes[Int($1)] }
            var harvest: SegmentHarvest
            switch gathered {
            case .memory(let whole):
                harvest = whole
            case .spill(let spill):
                harvest = try spill.harvest(range, expectedBytes: wanted, reusing: &spare)
            case .none:
                harvest = wanted == 0 ? SegmentHarvest(numbers: range)
                    : try SegmentHarvest.collect(from: path.appending("split"), numbers: range, expectedBytes: wanted)
                summary.bytesRead += harvest.bytesRead
                if wanted > 0 { summary.segmentPasses += 1 }
            }
            harvest.dictionaries = dictionaries
            let ran = try rewrite(range, of: names, harvest: harvest, lanes: lanes, store: store, known: known,
                                  damagedStreams: damagedStreams, keep: &keep, progress: progress)
            summary.threads = max(summary.threads, ran)
            if case .spill = gathered { spare = harvest.takeArena() }
        }
        progress("compact", names.count, names.count)
        for lane in lanes.dropFirst() { writer.absorb(lane.writer) }
        try writer.buckets?.flushCombinedWrites()
        writer.countBucketFiles()
        summary.streamsBucketed = writer.streamsBucketed
        let rewrittenEvents = lanes.reduce(0) { $0 + $1.eventsKept }
        summary.streamsAfter = lanes.reduce(0) { $0 + $1.streamsKept }
        // The temporary files go before anything is synced: the commit never sees them.
        if case .spill(let spill) = gathered { try spill.remove() }
        phases.end("rewrite", in: &summary)
        // The new stream files' writeback runs beside the global index's rewrite.
        let ahead = writer.dryRun ? nil : WritebackAhead.start(syncing: writer.root, owner: directory)
        defer { ahead?.wait() }
        // Damaged files are carried over unchanged, with their streams' global-index entries.
        for relative in damagedFiles.sorted() {
            for file in [relative, relative + ".idx"] where StorageDirectory.exists(path.appending(file)) {
                try writer.copy(from: path.appending(file), relative: file)
            }
        }
        // A file whose header is damaged names no stream: keep the entries of every stream without an intact file.
        if damagedFiles.count > damagedStreams.count {
            for (index, name) in names.enumerated() where !intactStreams.contains(name) { keep[index] = .all }
        }
        let (written, rewritten) = try writer.writeGlobalIndex(from: path.appending(GlobalIndex.fileName), keep: keep)
        try ahead?.finish()
        // Every event written has its entry, and no entry names an event not written.
        guard rewritten == rewrittenEvents else {
            throw RingstoreError(.corruptData, "the global index of \(directory) names \(rewritten) of the \(rewrittenEvents) events compaction keeps; nothing was changed",
                                 path: directory)
        }
        summary.eventsAfter = written
        if !damagedFiles.isEmpty { summary.streamsAfter += damagedFiles.count }
        summary.blocksAfter = writer.blocksWritten
        summary.blocksReused = writer.blocksReused
        summary.bytesRead += writer.bytesRead
    }

    /// Rewrites the streams of `range` (catalog numbers; `names` by number) on
    /// `lanes.count` threads at once: each stream is its own new file, built from
    /// its old file and its entries in `harvest`, which no lane changes. Each
    /// stream's kept versions go to its slot of `keep`. Returns how many threads ran.
    private func rewrite(_ range: Range<UInt32>, of names: [String], harvest: SegmentHarvest, lanes: [CompactionLane],
                         store: EventStore, known: [VerifiedStreamFile?], damagedStreams: Set<String>,
                         keep: inout [CompactionWriter.KeptVersions], progress: (String, Int, Int) -> Void) throws -> Int {
        let first = Int(range.lowerBound)
        let folder = path
        // Reported by the calling thread after every 32 of its own streams, with all lanes' count.
        var ownStreams = 0
        return try keep.withUnsafeMutableBufferPointer { table in
            let keepTable = CompactionLane.KeepTable(table)
            return try ParallelLanes.run(count: range.count, lanes: lanes.count, owner: directory, name: "rs-compact", progress: { done in
                ownStreams += 1
                if ownStreams % 32 == 0 { progress("compact", first + done, names.count) }
            }) { lane, item in
                let index = first + item
                let name = names[index]
                if damagedStreams.contains(name) {
                    keepTable[index] = .all
                    return
                }
                let oldFile: CompactionWriter.OldFile
                if index >= known.count {
                    oldFile = .unknown
                } else if let file = known[index] {
                    oldFile = .at(folder.appending(file.relative), nextVersion: file.nextVersion, bytes: file.bytes)
                } else {
                    oldFile = .none
                }
                if let kept = try lanes[lane].rewrite(stream: name, number: UInt32(index), store: store, harvest: harvest, oldFile: oldFile) {
                    keepTable[index] = kept
                }
            }
        }
    }
}

/// Test-only stops inside a compaction, per store folder: reaching an armed
/// step throws ``SimulatedCrash`` and the compaction ends there, as a killed
/// process would (the files stay as they are; only the lock goes).
enum CompactionCrashPoints {
    struct SimulatedCrash: Error {}
    private static let armed = Mutex<[String: CompactionStep]>([:])

    static func arm(_ step: CompactionStep?, for directory: String) {
        armed.withLock { $0[FilePath(directory).string] = step }
    }

    static func reach(_ step: CompactionStep, _ directory: FilePath) throws {
        let hit = armed.withLock { armed -> Bool in
            guard !armed.isEmpty, armed[directory.string] == step else { return false }
            armed[directory.string] = nil
            return true
        }
        if hit { throw SimulatedCrash() }
    }
}

/// Times a compaction's phases one after another (``CompactSummary/phases``).
struct PhaseClock {
    private var last: ContinuousClock.Instant

    init(started: ContinuousClock.Instant) { last = started }

    /// Records the phase that ends now, from the end of the one before.
    mutating func end(_ name: String, in summary: inout CompactSummary) {
        let now = ContinuousClock.now
        summary.phases.append((name, (now - last).seconds))
        last = now
    }
}
