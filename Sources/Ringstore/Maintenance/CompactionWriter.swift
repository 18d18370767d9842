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
    fileprivate(set) var blocksWritten = 0
    /// Dry run: the bytes the new files would take.
    fileprivate(set) var bytesWritten: UInt64 = 0
    /// Bytes of stream files and segment entries read.
    fileprivate(set) var bytesRead: UInt64 = 0
    private var folders = Set<String>()

    init(root: FilePath, dryRun: Bool, compress: Bool) {
        self.root = root
        self.dryRun = dryRun
        self.compress = compress
    }

    /// Writes `stream`'s events `[from, through]` — its file's blocks, then its
    /// segment chain's — leaving out, while `notBefore` is set, those older than it
    /// until one is not (the last one is always kept). Blocks are copied as raw
    /// payloads (``StreamBlock/rawBlock(from:)``: checksums checked, no event
    /// decoded), cut below `from`, joined to ``blockBytes`` and compressed again.
    /// Adds their global-index entries; returns how many events it kept.
    ///
    /// Runs under the stream's stripe lock, so the segment mover cannot move the
    /// stream's entries (and delete a segment) between reading its file and its chain.
    func write(stream: String, number: UInt32, from: UInt64, through last: UInt64, notBefore: Int64?,
               store: EventStore, entries: inout [GlobalIndex.Entry]) throws -> Int {
        try store.split.withStripe(number) {
            let handle = try store.split.directory.handle(for: stream, create: false)
            let fileNext = try handle?.withFile { $0.nextVersion } ?? 0
            var copier = RawCopier(writer: self, stream: stream, number: number, from: from, last: last, notBefore: notBefore)
            defer { copier.closeFile() }
            if let handle, fileNext > from {
                try readFileBlocks(at: handle.path, stream: stream, from: from, before: fileNext) { try copier.add($0, entries: &entries) }
            }
            let floor = max(from, fileNext)
            if store.split.segments.nextVersion(of: number) > floor {
                for entry in try store.split.segments.entries(of: number, from: floor) {
                    switch StreamBlock.rawBlock(from: entry.block) {
                    case .success(let block):
                        bytesRead += UInt64(entry.block.count)
                        guard let kept = block.dropping(below: floor), kept.count > 0 else { continue }
                        try copier.add(kept, entries: &entries)
                    case .failure(let error):
                        throw RingstoreError(.corruptData, "split segment \(entry.path) is damaged at offset \(entry.offset): \(error)",
                                             stream: stream, path: entry.path, offset: entry.offset)
                    }
                }
            }
            try copier.finish(entries: &entries)
            return copier.kept
        }
    }

    /// Calls `body` with each block of the stream file at `path` that holds versions in
    /// `[from, before)`, as a raw block (blocks wholly below `from` are not decoded).
    private func readFileBlocks(at path: FilePath, stream: String, from: UInt64, before: UInt64,
                                _ body: (StreamBlock.RawBlock) throws -> Void) throws {
        let file = try StorageFile.open(path)
        defer { file.close() }
        var reader = try SequentialReader(file: file)
        defer { bytesRead += reader.bytesRead }
        var offset = StreamFile.headerLength(nameBytes: stream.utf8.count)
        func damaged(_ why: String) -> RingstoreError {
            RingstoreError(.corruptData, "stream file \(path) is damaged at offset \(offset): \(why)", stream: stream, path: path.string, offset: offset)
        }
        while offset < reader.size {
            guard let head = try reader.bytes(at: offset, count: StreamBlock.headerSize) else { throw damaged("a torn block header") }
            guard case .success(let header) = StreamBlock.parseHeader(head) else { throw damaged("a damaged block header") }
            if header.firstVersion >= before { break }
            defer { offset += UInt64(header.totalLength) }
            if header.firstVersion + UInt64(header.count) <= from { continue }
            guard let bytes = try reader.bytes(at: offset, count: header.totalLength) else { throw damaged("a torn block") }
            switch StreamBlock.rawBlock(from: Array(bytes)) {
            case .success(let block):
                guard let kept = block.dropping(below: from), kept.count > 0 else { continue }
                try body(kept)
            case .failure(let error): throw damaged("\(error)")
            }
        }
    }

    /// Joins one stream's raw blocks into full-size blocks, applying `maxAge`, and writes them.
    private struct RawCopier {
        let writer: CompactionWriter
        let stream: String
        let number: UInt32
        let from: UInt64
        let last: UInt64
        let notBefore: Int64?
        var started: Bool
        /// While nothing is young enough: the last block seen, whose last event is kept if nothing ever is.
        var skipped: StreamBlock.RawBlock?
        var current = StreamBlock.RawBlock()
        var ready: [StreamBlock.RawBlock] = []
        var file: StreamFile?
        var kept = 0

        init(writer: CompactionWriter, stream: String, number: UInt32, from: UInt64, last: UInt64, notBefore: Int64?) {
            self.writer = writer
            self.stream = stream
            self.number = number
            self.from = from
            self.last = last
            self.notBefore = notBefore
            self.started = notBefore == nil
        }

        mutating func add(_ input: StreamBlock.RawBlock, entries: inout [GlobalIndex.Entry]) throws {
            var block = input
            if block.firstVersion + UInt64(block.count) > last + 1 {
                // Past the last acknowledged version (cannot happen in a closed store): cut.
                guard block.firstVersion <= last, let offsets = StreamBlock.entryOffsets(block.raw, count: block.count) else { return }
                let keep = Int(last + 1 - block.firstVersion)
                block = StreamBlock.RawBlock(raw: Array(block.raw[..<offsets[keep]]), firstVersion: block.firstVersion,
                                             firstPosition: block.firstPosition, count: keep)
            }
            if !started, let notBefore {
                guard let offsets = StreamBlock.entryOffsets(block.raw, count: block.count) else { return }
                let young = block.raw.withUnsafeBytes { r in
                    offsets.dropLast().firstIndex { Int64(littleEndian: r.loadUnaligned(fromByteOffset: $0 + 28, as: Int64.self)) >= notBefore }
                }
                guard let young else {
                    skipped = block
                    return
                }
                started = true
                guard let rest = block.dropping(below: block.firstVersion + UInt64(young)) else { return }
                block = rest
            }
            try take(block, entries: &entries)
        }

        private mutating func take(_ block: StreamBlock.RawBlock, entries: inout [GlobalIndex.Entry]) throws {
            guard block.count > 0, let offsets = StreamBlock.entryOffsets(block.raw, count: block.count) else { return }
            block.raw.withUnsafeBytes { r in
                for i in 0..<block.count {
                    let position = UInt64(littleEndian: r.loadUnaligned(fromByteOffset: offsets[i] + 4, as: UInt64.self))
                    entries.append(GlobalIndex.Entry(position: position, version: block.firstVersion + UInt64(i), stream: number))
                }
            }
            kept += block.count
            if current.count > 0 && current.raw.count + block.raw.count > CompactionWriter.blockBytes {
                ready.append(current)
                current = StreamBlock.RawBlock()
                if ready.count >= 16 { try flush() }
            }
            current.append(block)
        }

        mutating func finish(entries: inout [GlobalIndex.Entry]) throws {
            if !started, let skipped, let anchor = skipped.dropping(below: skipped.firstVersion + UInt64(skipped.count - 1)) {
                started = true
                try take(anchor, entries: &entries)  // nothing young enough: keep the last event as the version anchor
            }
            if current.count > 0 { ready.append(current) }
            current = StreamBlock.RawBlock()
            try flush()
            if writer.dryRun, kept > 0 { writer.bytesWritten += StreamFile.headerLength(nameBytes: stream.utf8.count) }
        }

        mutating func closeFile() {
            file?.close()
            file = nil
        }

        private mutating func flush() throws {
            guard !ready.isEmpty else { return }
            writer.blocksWritten += ready.count
            if writer.dryRun {
                var output: [UInt8] = []
                for block in ready { StreamBlock.encode(block, compress: writer.compress, into: &output) }
                writer.bytesWritten += UInt64(output.count)
            } else {
                if file == nil { file = try writer.create(stream) }
                try file!.append(blocks: ready, compress: writer.compress)
            }
            ready.removeAll(keepingCapacity: true)
        }
    }

    /// Creates the new file of `stream` at its usual path (the next free collision slot).
    fileprivate func create(_ stream: String) throws -> StreamFile {
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
