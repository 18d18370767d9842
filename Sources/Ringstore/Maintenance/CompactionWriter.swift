import Glibc
import SystemPackage

/// Writes the compacted store's new files under `compact.new/` with the
/// engine's own writers (``StreamFile``, ``GlobalIndex``), or, dry, only
/// counts the bytes they would take.
final class CompactionWriter {
    /// Raw bytes per block: the size the segment mover joins blocks to, and what one read decodes.
    static let blockBytes = SplitStore.movedBlockBytes
    let root: FilePath
    let dryRun: Bool
    let compress: Bool
    private(set) var blocksWritten = 0
    /// Dry run: the bytes the new files would take.
    private(set) var bytesWritten: UInt64 = 0
    private(set) var bytesRead: UInt64 = 0
    private var folders = Set<String>()

    init(root: FilePath, dryRun: Bool, compress: Bool) {
        self.root = root
        self.dryRun = dryRun
        self.compress = compress
    }

    /// Writes `stream`'s events `[from, through]` (through its store's reads, which
    /// join its file and its segment chain), leaving out, while `notBefore` is set,
    /// those older than it until one is not (the last one is always kept). Adds
    /// their global-index entries; returns how many it kept.
    func write(stream: String, number: UInt32, from: UInt64, through last: UInt64, notBefore: Int64?,
               store: EventStore, entries: inout [GlobalIndex.Entry]) throws -> Int {
        var version = from
        var started = notBefore == nil
        var current = StreamBlock.RawBlock()
        var ready: [StreamBlock.RawBlock] = []
        var file: StreamFile?
        var kept = 0
        defer { file?.close() }
        func flush() throws {
            guard !ready.isEmpty else { return }
            blocksWritten += ready.count
            if dryRun {
                var output: [UInt8] = []
                for block in ready { StreamBlock.encode(block, compress: compress, into: &output) }
                bytesWritten += UInt64(output.count)
            } else {
                if file == nil { file = try create(stream) }
                try file!.append(blocks: ready, compress: compress)
            }
            ready.removeAll(keepingCapacity: true)
        }
        while version <= last {
            let page = try store.split.read(stream: stream, from: version, direction: .forwards, maxCount: 4096)
            guard let lastInPage = page.last, lastInPage.version >= version else {
                throw RingstoreError(.corruptData, "stream \"\(stream)\" ends before version \(version) (its last stored version is \(last))", stream: stream)
            }
            for event in page where event.version >= version && event.version <= last {
                if !started {
                    guard event.timestampNanoseconds >= notBefore! || event.version == last else { continue }
                    started = true
                }
                let size = StreamBlock.entryHeaderSize + event.type.utf8.count + event.metadata.count + event.data.count
                bytesRead += UInt64(size)
                if current.count > 0 && current.raw.count + size > Self.blockBytes {
                    ready.append(current)
                    current = StreamBlock.RawBlock()
                    if ready.count >= 16 { try flush() }
                }
                var type = event.type
                type.withUTF8 { typeBytes in
                    event.metadata.withUnsafeBytes { metadata in
                        event.data.withUnsafeBytes { data in
                            current.add(version: event.version, position: event.position, id: event.id,
                                        timestampNanoseconds: event.timestampNanoseconds, json: event.contentType == .json,
                                        type: UnsafeRawBufferPointer(typeBytes), metadata: metadata, data: data)
                        }
                    }
                }
                entries.append(GlobalIndex.Entry(position: event.position, version: event.version, stream: number))
                kept += 1
            }
            version = lastInPage.version + 1
        }
        if current.count > 0 { ready.append(current) }
        try flush()
        if dryRun, kept > 0 {
            bytesWritten += StreamFile.headerLength(nameBytes: stream.utf8.count)
        }
        return kept
    }

    /// Creates the new file of `stream` at its usual path (the next free collision slot).
    private func create(_ stream: String) throws -> StreamFile {
        var probe = 0
        while true {
            let (folder, name) = StreamNaming.location(stream, probe: probe)
            let folderPath = root.appending(StreamNaming.folder).appending(folder)
            if folders.insert(folder).inserted { try StorageDirectory.create(folderPath) }
            let path = folderPath.appending(name)
            if !StorageDirectory.exists(path) { return try StreamFile.create(at: path.string, stream: stream) }
            probe += 1
        }
    }

    /// Copies a file byte for byte to the same place under the new root (`--skip-damaged`).
    func copy(from source: FilePath, relative: String) throws {
        guard !dryRun else {
            bytesWritten += fileSize(source)
            return
        }
        let target = root.appending(relative)
        let folder = target.removingLastComponent()
        if !StorageDirectory.isDirectory(folder) { try StorageDirectory.create(folder) }
        let input = try StorageFile.open(source)
        defer { input.close() }
        let output = try StorageFile.open(target, create: true)
        defer { output.close() }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while true {
            let got = try buffer.withUnsafeMutableBytes { try input.read(into: $0, at: offset) }
            if got == 0 { break }
            try buffer.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[0..<got]), at: offset) }
            offset += UInt64(got)
            bytesRead += UInt64(got)
        }
    }

    /// Writes the new global index (entries in position order).
    func writeGlobalIndex(_ entries: [GlobalIndex.Entry]) throws {
        guard !dryRun else {
            bytesWritten += UInt64(entries.count * GlobalIndex.entrySize)
            return
        }
        let index = try GlobalIndex(directory: root)
        var from = 0
        while from < entries.count {
            let to = min(entries.count, from + (1 << 16))
            try index.append(Array(entries[from..<to]))
            from = to
        }
    }
}

/// The size of a file, 0 if it cannot be read.
func fileSize(_ path: FilePath) -> UInt64 {
    var info = stat()
    return stat(path.string, &info) == 0 ? UInt64(info.st_size) : 0
}

extension StoreVerifier {
    /// Bytes of the files compaction rewrites, and of the whole store.
    func sizes() -> (rewritable: UInt64, total: UInt64) {
        var rewritable: UInt64 = fileSize(directory.appending(GlobalIndex.fileName))
        for folder in [StreamNaming.folder, "split"] {
            let root = directory.appending(folder)
            for entry in (try? StorageDirectory.entries(of: root)) ?? [] where entry != "." && entry != ".." {
                let path = root.appending(entry)
                if StorageDirectory.isDirectory(path) {
                    for name in (try? StorageDirectory.entries(of: path)) ?? [] where name != "." && name != ".." {
                        rewritable += fileSize(path.appending(name))
                    }
                } else {
                    rewritable += fileSize(path)
                }
            }
        }
        let kept = fileSize(directory.appending(JournalVerifier.fileName)) + fileSize(directory.appending(StreamCatalog.fileName))
        return (rewritable, rewritable + kept)
    }
}
