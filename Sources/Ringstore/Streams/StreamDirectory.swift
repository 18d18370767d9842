import BitCollections
import CRingstoreSupport
import Glibc
import Synchronization
import SystemPackage

/// Maps stream names to their files and keeps a bounded number of them open.
///
/// Files are found by ``StreamNaming`` (hash of the name, one level of 256
/// sub-folders, collision probing verified against the name in each file's header). At most
/// `maxOpenFiles` files are kept open, least recently used closed first. A
/// handle stays valid for whoever holds it even after eviction: the file is
/// closed when the last holder lets go.
final class StreamDirectory: StoredStreams {
    /// One open stream file, used by the splitter (appends) and readers (reads)
    /// one at a time under its lock.
    final class Handle: Sendable {
        let stream: String
        let path: FilePath
        let probe: Int
        private let file: Mutex<StreamFile>
        /// Told where the file ended when it closes, so that reopening it is cheap.
        private let onClose: @Sendable (String, Int, StreamFile.ResumePoint) -> Void

        /// Told the file's new descriptor count when it changes (it created its index).
        private let onDescriptorsChanged: @Sendable (String, Int) -> Void
        /// Descriptors the file held after the last use (see ``StreamFile/descriptorCount``).
        let descriptors: Atomic<Int>

        init(stream: String, path: FilePath, probe: Int, file: StreamFile,
             onClose: @escaping @Sendable (String, Int, StreamFile.ResumePoint) -> Void,
             onDescriptorsChanged: @escaping @Sendable (String, Int) -> Void) {
            self.stream = stream
            self.path = path
            self.probe = probe
            self.descriptors = Atomic(file.descriptorCount)
            self.file = Mutex(file)
            self.onClose = onClose
            self.onDescriptorsChanged = onDescriptorsChanged
        }

        deinit {
            let resume = file.withLock { f in
                f.close()
                return f.resumePoint
            }
            onClose(stream, probe, resume)
        }

        func withFile<R>(_ body: (StreamFile) throws -> R) rethrows -> R {
            var count = 0
            defer {
                // Outside the file's lock: the directory takes its own.
                if descriptors.exchange(count, ordering: .relaxed) != count { onDescriptorsChanged(stream, count) }
            }
            return try file.withLock { f in
                defer { count = f.descriptorCount }
                return try body(f)
            }
        }
    }

    private struct Cache: ~Copyable {
        /// Each with the descriptors it was counted for in `descriptors`.
        var handles: [String: (handle: Handle, lastUse: UInt64, counted: Int)] = [:]
        /// File descriptors the cached handles hold (data files and indexes).
        var descriptors = 0
        /// Eviction candidates, oldest first, each with the use it was queued at
        /// (entries before `head` are done). A candidate used since it was queued
        /// goes to the back again: least recently used, approximately, in O(1).
        var queue: [(stream: String, use: UInt64)] = []
        var head = 0
        var clock: UInt64 = 0
        var createdFolders: Set<String> = []
        /// Sub-folders of `streams/` made so far, and how many of them the last
        /// completed sync of `streams/` (or of the file system) covers. Counts,
        /// not a set of folders to sync taken and cleared by one caller: the
        /// checkpoint and the segment mover sync concurrently, and a folder
        /// made while one of them syncs must stay owed until a sync that began
        /// after it has completed (see ``syncAll(dirty:)``).
        var foldersMade: UInt64 = 0
        var foldersSynced: UInt64 = 0
        /// Files that were closed (evicted) while holding unsynced appends.
        var evictedDirty = false
        /// Where closed files ended, so that reopening them is cheap.
        var closed = ClosedFileMemo()
        /// Handles evicted while someone still held them: the next opener of the
        /// stream takes the same handle back rather than opening the file twice.
        var evictedAlive: [String: WeakHandle] = [:]
        /// Streams found to have no file, by catalog number (see ``handle(for:number:create:)``).
        var absent = BitSet()
    }

    private struct WeakHandle {
        weak var handle: Handle?
    }

    /// Opening, creating or taking back a stream's file happens under one of
    /// these locks (chosen by the file's name), so that a stream never has two
    /// open `StreamFile`s in a process: while one appends, a second opening the
    /// same file could read the half-written block as torn and cut it off.
    private final class OpenLock: Sendable {
        let mutex = Mutex(())
    }
    private let openLocks: [OpenLock] = (0..<64).map { _ in OpenLock() }

    let root: FilePath
    private let streamsFolder: String
    let maxOpenFiles: Int
    private let cache = Mutex(Cache())
    /// The journal's checkpoint (set at open, moved by each checkpoint): blocks
    /// before it are durable; blocks from there on may be torn or lost by a power
    /// cut, and the journal can rebuild them, so opening a file checks them and
    /// cuts a bad one (see ``StreamFile``).
    let replayFrom = Atomic<UInt64>(0)

    /// Reached at the end of ``syncAll(dirty:)`` (tests: to make a folder while a sync finishes).
    let foldersSyncedHook = TestHook()

    /// Decoded blocks shared by all readers (see ``BlockCache``).
    let blockCache: BlockCache
    /// What the small blocks of the store's files are compressed against
    /// (``StreamFileDictionary``), shared with every file opened here.
    let dictionarySlot: DictionarySlot
    /// The store's dictionary; nil when it has none (yet), or no intact copy of it.
    var dictionary: CompressionDictionary? { dictionarySlot.dictionary }
    /// Serialises ``adoptDictionary(_:)``.
    private let adoption = Mutex(())
    /// The lowest version of a stream that the split segments still hold
    /// (`UInt64.max`: none): a torn block from there on may be cut too, since
    /// moving the segment's entries writes it again.
    private let segmentsHoldFrom: @Sendable (String) -> UInt64
    /// Whether the journal (from the checkpoint on) holds a stream from its
    /// version 0, so that its file holds nothing found nowhere else. Set once the
    /// journal is open (it is opened after this directory).
    let journalHoldsWholeStream = Mutex<(@Sendable (String) -> Bool)?>(nil)
    /// Whether a sync of many files commits the file system's journal instead
    /// of calling `syncfs` (``FileSystemCommit``; its file system has one).
    let commitsFileSystemJournal: Bool

    /// `commitsFileSystemJournal`: nil to ask the file system holding `root`
    /// (tests set it, to run that path under the power-loss simulation).
    init(root: FilePath, maxOpenFiles: Int, blockCacheBytes: Int = 16 << 20,
         segmentsHoldFrom: @escaping @Sendable (String) -> UInt64 = { _ in .max },
         commitsFileSystemJournal: Bool? = nil) throws {
        self.root = root
        self.commitsFileSystemJournal = commitsFileSystemJournal ?? FileSystemCommit.isAvailable(at: root)
        self.segmentsHoldFrom = segmentsHoldFrom
        self.blockCache = BlockCache(budgetBytes: blockCacheBytes)
        self.streamsFolder = root.string + "/" + StreamNaming.folder
        self.maxOpenFiles = maxOpenFiles
        try StorageDirectory.create(FilePath(streamsFolder))
        try StreamFileDictionary.removeUnfinished(in: root)
        dictionarySlot = DictionarySlot(try StreamFileDictionary.read(in: root)?.dictionary)
    }

    /// The store's stream-file dictionary, made `candidate` (durably, before
    /// the caller compresses any block against it) if the store has no
    /// `streams/dictionary` file yet. Nil when the file exists but no copy of
    /// it is intact: its blocks need that one, so it is never replaced.
    func adoptDictionary(_ candidate: CompressionDictionary) throws -> CompressionDictionary? {
        if let current = dictionary { return current }
        return try adoption.withLock { _ throws(any Error) -> CompressionDictionary? in
            if let current = dictionary { return current }
            guard !StorageDirectory.exists(StreamFileDictionary.path(in: root)) else { return nil }
            try StreamFileDictionary.writeDurably(candidate, in: root)
            return dictionarySlot.fill(candidate)
        }
    }

    /// Stream files (data and index) open in the cache now.
    var openFileCount: Int { cache.withLock { $0.descriptors } }

    /// The open handle for `stream`, opening its file (or, with `create`,
    /// creating it) if needed. Returns nil when the stream has no file and
    /// `create` is false.
    ///
    /// `number` is the stream's catalog number, when the caller knows it: a
    /// stream found to have no file is then remembered, so that asking again
    /// costs no file-system lookup (readers of streams held only in the split
    /// segments, which `$all` reads block by block, asked the file system for
    /// the missing file every time). Stream files are created only here
    /// (`create`, which forgets the stream first, under the stream's open lock;
    /// a creation without a number forgets every stream), so the memo never
    /// hides a file.
    ///
    /// Why by number: the memo was a set of names, and with 100,000 streams
    /// that live only in the segments it held all of them, 4.2 MiB of hash
    /// table at the peak of a bench's ingest; a bit per catalog number is 12 KiB.
    func handle(for stream: String, number: UInt32?, create: Bool) throws -> Handle? {
        // One lock section for the common answers: open already, or known to have no file.
        switch cache.withLock({ c in Self.lookUp(stream, number: create ? nil : number, in: &c) }) {
        case .open(let handle): return handle
        case .absent: return nil
        case .unknown: break
        }
        let lock = openLocks[Int(truncatingIfNeeded: UInt(bitPattern: StreamNaming.hash(stream).hashValue) % UInt(openLocks.count))]
        return try lock.mutex.withLock { _ throws(any Error) -> Handle? in
            // Opened meanwhile by another thread, or evicted but still held: use that one.
            if let cached = cachedHandle(stream) { return cached }
            if let alive = cache.withLock({ $0.evictedAlive.removeValue(forKey: stream)?.handle }) { return insert(alive) }
            if create {
                cache.withLock { c in
                    if let number { c.absent.remove(Int(number)) } else { c.absent = BitSet() }
                }
            }
            let handle: Handle?
            do {
                handle = try openOrCreate(stream, create: create)
            } catch let error as RingstoreError where error.isOutOfDescriptors {
                shed()
                handle = try openOrCreate(stream, create: create)
            }
            if handle == nil, let number { cache.withLock { _ = $0.absent.insert(Int(number)) } }
            return handle
        }
    }

    private func cachedHandle(_ stream: String) -> Handle? {
        cache.withLock { c -> Handle? in
            if case .open(let handle) = Self.lookUp(stream, number: nil, in: &c) { return handle }
            return nil
        }
    }

    private enum Lookup {
        case open(Handle)
        case absent
        case unknown
    }

    /// The stream's cached handle (marked used), else whether stream `number`
    /// is known to have no file (nil: not asked), under the cache's lock.
    private static func lookUp(_ stream: String, number: UInt32?, in c: inout Cache) -> Lookup {
        if let entry = c.handles[stream] {
            c.clock += 1
            c.handles[stream]!.lastUse = c.clock
            return .open(entry.handle)
        }
        if let number, c.absent.contains(Int(number)) { return .absent }
        return .unknown
    }

    /// The slow path of ``handle(for:number:create:)``, under the stream's open lock.
    private func openOrCreate(_ stream: String, create: Bool) throws -> Handle? {
        if let known = cache.withLock({ $0.closed.resumePoint(of: stream) }) {
            let (folder, name) = StreamNaming.location(stream, probe: known.probe)
            let pathString = streamsFolder + "/" + folder + "/" + name
            if let file = try StreamFile.reopen(at: pathString, stream: stream, resume: known.resume) {
                return insert(makeHandle(stream: stream, path: FilePath(pathString), probe: known.probe, file: file))
            }
        }
        var probe = 0
        while true {
            let (folder, name) = StreamNaming.location(stream, probe: probe)
            let folderPath = streamsFolder + "/" + folder
            let pathString = folderPath + "/" + name
            let path = FilePath(pathString)
            if StorageDirectory.exists(path) {
                let file: StreamFile
                do {
                    file = try StreamFile.open(at: pathString, replayFrom: replayFrom.load(ordering: .acquiring),
                                               segmentsHoldFrom: segmentsHoldFrom(stream),
                                               expecting: stream,
                                               heldElsewhere: { self.journalHoldsWholeStream.withLock { $0 }?(stream) ?? false },
                                               dictionary: dictionary)
                } catch is StreamFile.NeverWritten {
                    // Empty or header-only (see `NeverWritten`); anything else that cannot be
                    // opened is thrown, and the file kept for whoever repairs it. The removal
                    // must succeed before looking again: one that failed silently found the
                    // same file again, forever, holding the open lock.
                    try StorageDirectory.removeFile(path)
                    continue
                }
                if file.streamName == stream { return insert(makeHandle(stream: stream, path: path, probe: probe, file: file)) }
                file.close()  // another stream with the same hash: try the next slot
                probe += 1
                continue
            }
            guard create else { return nil }
            try createFolder(folderPath)
            let file = try StreamFile.create(at: pathString, stream: stream)
            return insert(makeHandle(stream: stream, path: path, probe: probe, file: file))
        }
    }

    private func makeHandle(stream: String, path: FilePath, probe: Int, file: StreamFile) -> Handle {
        file.blockCache = blockCache.budgetBytes > 0 ? blockCache : nil
        file.dictionarySlot = dictionarySlot
        return Handle(stream: stream, path: path, probe: probe, file: file, onClose: { [weak self] stream, probe, resume in
            self?.remember(stream, probe: probe, resume: resume)
        }, onDescriptorsChanged: { [weak self] stream, count in
            self?.descriptorsChanged(stream, to: count)
        })
    }

    /// A cached file opened or closed its index: count it, and evict if over the bound.
    private func descriptorsChanged(_ stream: String, to count: Int) {
        var evicted: [Handle] = []
        cache.withLock { c in
            guard let counted = c.handles[stream]?.counted else { return }  // evicted meanwhile: no longer counted
            c.descriptors += count - counted
            c.handles[stream]!.counted = count
            evict(&c, into: &evicted)
        }
        evicted.removeAll()
    }

    /// Records where a closed file ended (see ``ClosedFileMemo``).
    private func remember(_ stream: String, probe: Int, resume: StreamFile.ResumePoint) {
        cache.withLock { c in
            if c.evictedAlive[stream] != nil, c.evictedAlive[stream]?.handle == nil { c.evictedAlive[stream] = nil }
            c.closed.remember(stream, probe: probe, resume: resume)
        }
    }

    func storedNextVersion(of stream: String) throws -> UInt64 {
        try handle(for: stream, number: nil, create: false)?.withFile { $0.nextVersion } ?? 0
    }

    /// Not known here (file names are made from the bytes): nil.
    func storedName(equivalentTo stream: String) -> String? { nil }

    func storedEvents(of stream: String, from version: UInt64, count: Int) throws -> [RecordedEvent] {
        try handle(for: stream, number: nil, create: false)?.withFile { try $0.read(from: version, direction: .forwards, maxCount: count) } ?? []
    }

    /// True (and reset) if a file with unsynced appends was closed since the last call.
    func takeEvictedDirty() -> Bool {
        cache.withLock { c in
            defer { c.evictedDirty = false }
            return c.evictedDirty
        }
    }

    /// Every stream file currently open.
    func openHandles() -> [Handle] { cache.withLock { $0.handles.values.map(\.handle) } }

    private func insert(_ handle: Handle) -> Handle {
        var evicted: [Handle] = []
        let result = cache.withLock { c -> Handle in
            if let existing = c.handles[handle.stream] { return existing.handle }  // lost a race: use the first
            c.clock += 1
            let counted = handle.descriptors.load(ordering: .relaxed)
            c.handles[handle.stream] = (handle, c.clock, counted)
            c.descriptors += counted
            c.queue.append((handle.stream, c.clock))
            evict(&c, into: &evicted)
            return handle
        }
        evicted.removeAll()  // closed here, outside the lock, unless a reader still holds one
        return result
    }

    /// Evicts least recently used handles until the cache holds at most `limit`
    /// descriptors (``maxOpenFiles`` unless given), keeping at least one handle.
    private func evict(_ c: inout Cache, into evicted: inout [Handle], limit: Int? = nil) {
        let limit = limit ?? maxOpenFiles
        while c.descriptors > limit, c.handles.count > 1, c.head < c.queue.count {
            let candidate = c.queue[c.head]
            c.head += 1
            guard let entry = c.handles[candidate.stream] else { continue }
            if entry.lastUse > candidate.use {
                c.queue.append((candidate.stream, entry.lastUse))  // used since: another chance
            } else {
                c.handles[candidate.stream] = nil
                c.descriptors -= entry.counted
                c.evictedAlive[candidate.stream] = WeakHandle(handle: entry.handle)
                evicted.append(entry.handle)
            }
        }
        if c.head > 1024, c.head * 2 > c.queue.count {
            c.queue.removeFirst(c.head)
            c.head = 0
        }
        if !evicted.isEmpty { c.evictedDirty = true }
    }

    /// Drops every cached handle, closing its files unless a reader still holds
    /// it. For a closed store whose files are about to be replaced: compaction
    /// unlinks the old stream files after the switch, and an unlinked file's
    /// blocks are freed (and, on a file system with online discard, discarded,
    /// a wait per file) only at its last close — otherwise at process exit, one
    /// file after another.
    func closeAll() {
        var dropped: [Handle] = []
        cache.withLock { c in
            dropped = c.handles.values.map(\.handle)
            c.handles = [:]
            c.descriptors = 0
            c.queue = []
            c.head = 0
        }
        dropped.removeAll()  // closed here, outside the lock
    }

    /// Closes the least recently used half of the cached files: called when the
    /// process ran out of descriptors (`EMFILE`/`ENFILE`), whoever used them up,
    /// so that opening can be retried rather than failing the splitter for good.
    func shed() {
        var evicted: [Handle] = []
        cache.withLock { c in evict(&c, into: &evicted, limit: c.descriptors / 2) }
        evicted.removeAll()
    }

    private func createFolder(_ folder: String) throws {
        if cache.withLock({ $0.createdFolders.contains(folder) }) { return }
        try StorageDirectory.create(FilePath(folder))
        cache.withLock { c in
            c.createdFolders.insert(folder)
            c.foldersMade += 1  // the new folder's own entry in `streams/` (or one found there: harmless)
        }
    }

    /// Makes the files of `dirty` streams durable, and the directory entries the
    /// checkpoint relies on: new stream and index files, and new sub-folders of
    /// `streams/`. One `syncfs` for the whole file system (files and directory
    /// entries alike) when many are dirty or some were closed (evicted) while
    /// dirty; else one `fdatasync` per file, then an `fsync` of each folder that
    /// gained an entry since its last sync. Per-file syncs of thousands of small
    /// files cost a journal commit each; `syncfs` costs one, at the price of also
    /// flushing unrelated dirty files on the same file system. Takes names, not
    /// open files, so that being dirty never keeps a file open past the
    /// `maxOpenFiles` bound.
    ///
    /// Why the folders: an `fdatasync` makes a file's bytes durable, not its
    /// name. Without the folder's `fsync`, a power cut after the checkpoint that
    /// relies on a new stream file could leave its bytes on the disk and no name
    /// for them, and the journal no longer holding its events.
    ///
    /// `wholeFileSystem`: one `syncfs` whatever the number of files (the segment
    /// mover's batches: see ``SegmentMover``); on a file system with a journal
    /// (``commitsFileSystemJournal``) and every dirty file open, instead each
    /// file's pages written back and one commit of that journal
    /// (``FileSystemCommit``), which leaves the metadata's home writes to later.
    /// `others`: files outside the stream files (the bucket files) made durable
    /// with them, only with `wholeFileSystem` (written back before the commit,
    /// or covered by the `syncfs`; the caller writes their unsynced bytes again
    /// after a failed sync, and records the outcome).
    func syncAll(dirty: some Collection<String>, wholeFileSystem: Bool = false, others: [StorageFile] = []) throws {
        precondition(others.isEmpty || wholeFileSystem, "other files are synced only with the whole file system")
        let openDirty: [Handle] = cache.withLock { c in dirty.compactMap { c.handles[$0]?.handle } }
        let open: [Handle]? = openDirty.count == dirty.count ? openDirty : nil  // nil: some dirty file was closed
        // Every folder counted so far was made before this sync begins, so the sync covers its entry.
        let foldersOwed: UInt64? = cache.withLock { $0.foldersMade > $0.foldersSynced ? $0.foldersMade : nil }
        let evictedDirty = takeEvictedDirty()
        if wholeFileSystem || evictedDirty || dirty.count > 64 || open == nil {
            // After a failed sync, open files write their unsynced bytes again first; a
            // file closed since cannot (a known limit, see docs/ARCHITECTURE.md).
            let created = try openDirty.map { handle in
                try handle.withFile { file in
                    try file.rewriteIfSyncFailed()
                    return file.entriesCreated
                }
            }
            do {
                if commitsFileSystemJournal && !evictedDirty && open != nil && !(openDirty.isEmpty && others.isEmpty) {
                    // Every dirty file is open: their pages, then one journal commit for all the metadata.
                    try FileSystemCommit.commit(root: root, writeBack: {
                        for handle in openDirty { try handle.withFile { try $0.writeBackAndWait() } }
                        for file in others { try file.writeBackAndWait() }
                    }, flushCache: {
                        if let first = openDirty.first { try first.withFile { try $0.data.syncData() } } else { try others[0].syncData() }
                    })
                } else {
                    try StorageDirectory.syncFileSystem(containing: root)
                }
            } catch {
                for handle in openDirty { handle.withFile { $0.markSyncFailed() } }
                throw error
            }
            for (handle, count) in zip(openDirty, created) { handle.withFile { $0.entriesSynced = max($0.entriesSynced, count) } }
        } else if let open {
            var folders: Set<String> = foldersOwed == nil ? [] : [streamsFolder]
            var created: [(handle: Handle, count: Int)] = []
            for handle in open {
                try handle.withFile { file in
                    try file.sync()
                    if file.entriesCreated > file.entriesSynced {
                        created.append((handle, file.entriesCreated))
                        folders.insert(handle.path.removingLastComponent().string)
                    }
                }
            }
            for folder in folders.sorted() { try StorageDirectory.sync(FilePath(folder)) }
            for (handle, count) in created { handle.withFile { $0.entriesSynced = max($0.entriesSynced, count) } }
        }
        if let foldersOwed { cache.withLock { $0.foldersSynced = max($0.foldersSynced, foldersOwed) } }
        foldersSyncedHook.reached()
    }
}
