import CRingstoreSupport
import Glibc
import Synchronization
import SystemPackage

/// Maps stream names to their files and keeps a bounded number of them open.
///
/// Files are found by ``StreamNaming`` (hash of the name, two folder levels,
/// collision probing verified against the name in each file's header). At most
/// `maxOpenFiles` files are kept open, least recently used closed first. A
/// handle stays valid for whoever holds it even after eviction: the file is
/// closed when the last holder lets go.
final class StreamDirectory: StoredStreams {
    /// One open stream file, used by the splitter (appends) and readers (reads)
    /// one at a time under its lock.
    final class Handle: Sendable {
        let stream: String
        let path: FilePath
        private let file: Mutex<StreamFile>

        init(stream: String, path: FilePath, file: StreamFile) {
            self.stream = stream
            self.path = path
            self.file = Mutex(file)
        }

        deinit { file.withLock { $0.close() } }

        func withFile<R>(_ body: (StreamFile) throws -> R) rethrows -> R {
            try file.withLock { try body($0) }
        }
    }

    private struct Cache: ~Copyable {
        var handles: [String: (handle: Handle, lastUse: UInt64)] = [:]
        var clock: UInt64 = 0
        var createdFolders: Set<String> = []
        /// Files that were closed (evicted) while holding unsynced appends.
        var evictedDirty = false
    }

    let root: FilePath
    private let streamsFolder: String
    let maxOpenFiles: Int
    private let cache = Mutex(Cache())
    /// The journal checkpoint when the store was opened: stream-file blocks from
    /// there on can be rebuilt by the splitter's replay, so a torn one may be cut.
    let replayFrom = Atomic<UInt64>(0)

    init(root: FilePath, maxOpenFiles: Int) throws {
        self.root = root
        self.streamsFolder = root.string + "/" + StreamNaming.folder
        self.maxOpenFiles = maxOpenFiles
        try StorageDirectory.create(FilePath(streamsFolder))
    }

    var openFileCount: Int { cache.withLock { $0.handles.count } }

    /// The open handle for `stream`, opening its file (or, with `create`,
    /// creating it) if needed. Returns nil when the stream has no file and
    /// `create` is false.
    func handle(for stream: String, create: Bool) throws -> Handle? {
        if let cached = cache.withLock({ c -> Handle? in
            guard let entry = c.handles[stream] else { return nil }
            c.clock += 1
            c.handles[stream]!.lastUse = c.clock
            return entry.handle
        }) { return cached }

        var probe = 0
        while true {
            let (folder, name) = StreamNaming.location(stream, probe: probe)
            let folderPath = streamsFolder + "/" + folder
            let pathString = folderPath + "/" + name
            let path = FilePath(pathString)
            if StorageDirectory.exists(path) {
                let file: StreamFile
                do {
                    file = try StreamFile.open(at: pathString, replayFrom: replayFrom.load(ordering: .acquiring))
                } catch is StreamFile.NeverWritten {
                    StorageDirectory.remove(path)
                    continue
                }
                if file.streamName == stream { return insert(Handle(stream: stream, path: path, file: file)) }
                file.close()  // another stream with the same hash: try the next slot
                probe += 1
                continue
            }
            guard create else { return nil }
            try createFolder(folderPath)
            let file = try StreamFile.create(at: pathString, stream: stream)
            return insert(Handle(stream: stream, path: path, file: file))
        }
    }

    func storedNextVersion(of stream: String) throws -> UInt64 {
        try handle(for: stream, create: false)?.withFile { $0.nextVersion } ?? 0
    }

    func storedEvents(of stream: String, from version: UInt64, count: Int) throws -> [RecordedEvent] {
        try handle(for: stream, create: false)?.withFile { try $0.read(from: version, direction: .forwards, maxCount: count) } ?? []
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
            c.handles[handle.stream] = (handle, c.clock)
            while c.handles.count > maxOpenFiles {
                let oldest = c.handles.min { $0.value.lastUse < $1.value.lastUse }!
                c.handles[oldest.key] = nil
                evicted.append(oldest.value.handle)
            }
            if !evicted.isEmpty { c.evictedDirty = true }
            return handle
        }
        evicted.removeAll()  // closed here, outside the lock, unless a reader still holds one
        return result
    }

    private func createFolder(_ folder: String) throws {
        if cache.withLock({ $0.createdFolders.contains(folder) }) { return }
        try StorageDirectory.create(FilePath(folder))
        cache.withLock { _ = $0.createdFolders.insert(folder) }
    }

    /// Makes the files of `dirty` streams durable: one `syncfs` for the whole
    /// file system when many are dirty or some were closed (evicted) while
    /// dirty, else one `fdatasync` per file plus its folder. Per-file syncs of
    /// thousands of small files cost a journal commit each; `syncfs` costs one,
    /// at the price of also flushing unrelated dirty files on the same file
    /// system. Takes names, not open files, so that being dirty never keeps a
    /// file open past the `maxOpenFiles` bound.
    func syncAll(dirty: some Collection<String>) throws {
        let openDirty: [Handle] = cache.withLock { c in dirty.compactMap { c.handles[$0]?.handle } }
        let open: [Handle]? = openDirty.count == dirty.count ? openDirty : nil  // nil: some dirty file was closed
        if takeEvictedDirty() || dirty.count > 64 || open == nil {
            // After a failed sync, open files write their unsynced bytes again first; a
            // file closed since cannot (a known limit, see docs/ARCHITECTURE.md).
            for handle in openDirty { try handle.withFile { try $0.rewriteIfSyncFailed() } }
            do {
                try StorageDirectory.syncFileSystem(containing: root)
            } catch {
                for handle in openDirty { handle.withFile { $0.markSyncFailed() } }
                throw error
            }
        } else if let open {
            for handle in open { try handle.withFile { try $0.sync() } }
            // New files' directory entries: sync the folders they were created in.
            for folder in Set(open.map { $0.path.removingLastComponent() }) { try StorageDirectory.sync(folder) }
        }
    }
}
