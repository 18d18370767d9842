import Synchronization
import SystemPackage

/// The bucket files of a store (`streams/buckets/*.seg`): where the segment
/// mover puts the moved history of small streams, many streams to a file,
/// instead of a file per stream.
///
/// Why: a move into a file of the stream's own costs the device at least one
/// write per stream whatever it carries, and a file created on its first move;
/// on an SD card that serves about a thousand writes a second, a sweep of the
/// oldest segment over 100,000 small streams then takes minutes, and the
/// inode and folder blocks those moves dirty reach the card in the kernel's
/// writeback every 30 s, in front of the journal's flushes. Appended to a few
/// shared files, the same moves are a few large sequential writes and create
/// no file (docs/ARCHITECTURE.md, "Small streams in shared files").
///
/// A bucket file is a ``SplitSegment`` (the same header, dictionary area,
/// envelopes and blocks) that is appended to and never deleted; each stream's
/// entries are chained newest to oldest as in the segments, and memory holds
/// each bucketed stream's newest entry (``Head``). A stream's bucket is its
/// catalog number modulo ``count``. A bucket continues in a new file (its next
/// generation) once its file passes ``fileLimit``, since links hold 32-bit
/// offsets. File numbers are `numberBase | generation << 8 | bucket`: they sort
/// by generation within a bucket (links fall along a chain), and never collide
/// with a segment's number (which stays below `numberBase`), so an entry's
/// file number alone says where it lies.
///
/// A bucket chain always starts at version 0: a stream is bucketed only while
/// it has no stream file, and the chain holds its moved history from its start
/// (``SplitStore`` reads and moves through it).
///
/// Crash safety: a new file's header and dictionary are synced at its creation,
/// before any entry; entries are appended in the page cache and made durable by the
/// mover's batch sync (the bucket files written back with the batch's stream
/// files, then one file-system journal commit, or `syncfs`), before the segments
/// forget the chains moved and are deleted. A cut before that sync may leave
/// a torn tail, or entries of one write in part: opening cuts the bytes after
/// the last whole entry, and takes into a stream's head only the entries that
/// continue its chain from version 0 with no gap (an entry after a lost one of
/// the same stream is garbage). The segments still hold every version such an
/// entry held, and the mover writes them again.
final class StreamBuckets: Sendable {
    typealias Link = SplitSegment.Link

    /// What a bucket holds of one stream.
    struct Head: Sendable, Equatable {
        /// The newest entry.
        var link: Link
        /// The version after the newest entry's last: the chain holds `0..<next`.
        var next: UInt64
        /// Raw (uncompressed) bytes in the chain, saturating.
        var rawBytes: UInt32
        var entries: UInt32

        static let empty = Head(link: .none, next: 0, rawBytes: 0, entries: 0)

        /// This head once the entry at `link`, holding `count` versions from `first`
        /// in `raw` raw bytes, is added to the chain.
        func adding(_ link: Link, first: UInt64, count: Int, raw: Int) -> Head {
            let sum = rawBytes.addingReportingOverflow(UInt32(clamping: raw))
            return Head(link: link, next: first + UInt64(count), rawBytes: sum.overflow ? .max : sum.partialValue, entries: entries + 1)
        }
    }

    /// `heads`, grown with empty heads if needed so that `index` is in it.
    private static func ensure(_ index: Int, in heads: inout [Head]) {
        if index >= heads.count { heads.append(contentsOf: repeatElement(Head.empty, count: index + 1 - heads.count)) }
    }

    /// The first number of a bucket file (segments' numbers stay below it).
    static let numberBase: UInt32 = 0x8000_0000
    /// Buckets at most (the bucket is the low byte of a file number).
    static let maxCount = 256
    /// The folder under the store's `streams/`.
    static let folderName = "buckets"

    /// The file number of `bucket`'s generation `generation`.
    static func fileNumber(bucket: Int, generation: UInt32) -> UInt32 {
        numberBase | generation << 8 | UInt32(bucket)
    }

    /// The bucket and generation a file number stands for, or nil if it is no bucket file's.
    static func bucketAndGeneration(of number: UInt32) -> (bucket: Int, generation: UInt32)? {
        guard number >= numberBase else { return nil }
        return (Int(number & 0xFF), (number & ~numberBase) >> 8)
    }

    private struct State: ~Copyable {
        var files: [UInt32: SplitSegment] = [:]
        /// Each bucket's newest file, by bucket.
        var current: [SplitSegment?]
        /// By stream number; `link.isNone` for streams without a chain.
        var heads: [Head] = []
        /// A file (or the folder itself) was created since the folder was last synced.
        var folderDirty = false
        /// Where whole entries were found that are on no chain (damage, or what a cut
        /// left of a write in part), at open: for logs and `verify`.
        var stray: [Link] = []
        /// The files' writeback, paced for all of them together.
        var pace = BucketWritebackPace()
        /// The files' bytes in all when the heads were last snapshotted (or opened).
        var snapshotBytes: UInt64 = 0
        /// A sync failed: no snapshot again in this process (see ``writeSnapshotIfGrown()``).
        var syncEverFailed = false
    }

    let folder: FilePath
    /// The store's `streams/` folder, which holds ``folder`` once it exists.
    private let parent: FilePath
    let count: Int
    /// A bucket's file past this size is closed, and its next entries go to a new generation.
    let fileLimit: UInt64
    /// Whether a new file's header and dictionary are synced before its first entry
    /// (see ``append(stream:blocks:compress:dictionary:)``). Off only where nothing
    /// counts until a later sync of everything: a compaction's new files.
    let syncsNewFiles: Bool
    private let state: Mutex<State>
    /// Held while a bucket's next file is created and synced (see
    /// ``createNextFile(of:replacing:compress:dictionary:)``), so that two
    /// buckets' first files never both create `streams/buckets/`; taken after
    /// the bucket's ``appending`` lock, before `state`, never inside it.
    private let creation = Mutex<Void>(())
    /// One per bucket, held by an append (and by ``forget(stream:)``) to that
    /// bucket from before it reads the stream's head until it has installed
    /// the new one; taken before ``creation`` and `state`.
    ///
    /// Why: the entry's `pwrite` then runs outside the state lock. Under it,
    /// the lanes of a compaction (one append per stream, into all 64 buckets)
    /// waited for each other's writes, and every read of a bucketed stream
    /// waited for a move's write into any bucket. One append's write is not
    /// seen before its head is installed (no link leads to it, and the file's
    /// ``SplitSegment/end``, which syncs go by, moves only then), and appends
    /// to one bucket (so to one stream) still follow each other.
    private let appending: [Mutex<CombinedWrite>]

    /// A bucket's entries appended but not yet written, when the buckets
    /// combine writes (``combinesWrites``): they follow on from `start` in
    /// `file`, whose ``SplitSegment/end`` already counts them.
    private struct CombinedWrite {
        var file: SplitSegment?
        var start: UInt64 = 0
        var bytes: [UInt8] = []
    }

    /// Whether appends gather each bucket's entries and write them
    /// ``combinedWriteBytes`` at a time (a compaction's new buckets), rather
    /// than with a `pwrite` each. Such buckets are made durable only by
    /// ``sync()`` or after ``flushCombinedWrites()`` (a compaction's `syncfs`
    /// of everything); their reads write a bucket's gathered entries first.
    ///
    /// Why: a compaction appends every small stream once, about 5 KiB each,
    /// and 100,000 `pwrite`s at the ends of 64 files were a fifth of its
    /// processor time, half of it the kernel zeroing and copying page-cache
    /// folios. (The mover does not combine: its batch's sync follows at once.)
    ///
    /// Nor do combining buckets pace their writeback (``BucketWritebackPace``,
    /// which keeps a live store's journal flushes from waiting behind the
    /// mover's writes): no journal is written beside a compaction, whose new
    /// files go to the device through `WritebackAhead` and its `syncfs`.
    var combinesWrites: Bool { combinedWriteBytes > 0 }
    /// How many bytes of a bucket's entries a combining append gathers before
    /// it writes them (0: appends do not combine writes).
    let combinedWriteBytes: Int
    /// ``combinedWriteBytes`` for a compaction's buckets: up to 64 buffers of
    /// about this size are held (16 MiB), for a `pwrite` per 256 KiB.
    static let compactionWriteBytes = 256 << 10
    private let chains = EntryChains()
    /// Reached on the creating thread just before a new file's creation sync,
    /// with the state lock not held: a test's way to read and append meanwhile.
    let newFileSyncing = TestHook()
    /// Reached on the appending thread just before an entry's write, with its
    /// bucket's lock held and the state lock not: a test's way to read and append meanwhile.
    let entryWriting = TestHook()

    /// Bytes the files grow by between two snapshots of the heads (``writeSnapshotIfGrown()``).
    let snapshotGrowth: UInt64
    /// How many files opening walked from a snapshot's end rather than whole.
    let filesOpenedFromSnapshot: Int
    /// Held while a snapshot is written.
    private let snapshotting = Mutex<Void>(())

    /// Opens the bucket files under `streams` (the store's `streams/` folder;
    /// `streams/buckets/` is created with the first bucket file), cuts each
    /// file's torn tail and rebuilds every bucketed stream's ``Head``: from
    /// the heads' snapshot and what the files gained since, if it is usable
    /// (``BucketHeadsSnapshot``), else by walking every file whole.
    init(streams: FilePath, count: Int = 64, fileLimit: UInt64 = 1 << 30, syncsNewFiles: Bool = true, combinedWriteBytes: Int = 0,
         snapshotGrowth: UInt64 = 64 << 20) throws {
        precondition(count >= 1 && count <= Self.maxCount && fileLimit < UInt64(UInt32.max))
        self.snapshotGrowth = snapshotGrowth
        var fromSnapshot = 0
        parent = streams
        self.syncsNewFiles = syncsNewFiles
        self.combinedWriteBytes = max(0, combinedWriteBytes)
        folder = streams.appending(Self.folderName)
        self.count = count
        self.fileLimit = fileLimit
        var s = State(current: Array(repeating: nil, count: count))
        if StorageDirectory.isDirectory(folder) {
            let numbers = try StorageDirectory.entries(of: folder).compactMap(SplitSegment.number(inFileName:)).sorted()
            // The snapshot, if every file it names is there and at least as long as it says.
            var snapshot = BucketHeadsSnapshot.read(in: folder)
            if let taken = snapshot {
                let present = Set(numbers)
                for file in taken.files where !present.contains(file.number)
                    || fileSize(folder.appending(SplitSegment.fileName(of: file.number))) < file.end {
                    snapshot = nil
                    break
                }
            }
            let ends = Dictionary(uniqueKeysWithValues: (snapshot?.files ?? []).map { ($0.number, $0.end) })
            if let snapshot {
                s.heads = snapshot.heads
                s.snapshotBytes = snapshot.files.reduce(0) { $0 + $1.end }
            }
            for number in numbers {
                guard let (bucket, _) = Self.bucketAndGeneration(of: number), bucket < count else {
                    throw RingstoreError(.corruptData, "\(folder.appending(SplitSegment.fileName(of: number))) is not a bucket file of a store with \(count) buckets",
                                         path: folder.appending(SplitSegment.fileName(of: number)).string)
                }
                // Created, but its header (or its dictionary, synced before any entry) never
                // reached the disk whole: it held nothing.
                guard let file = try SplitSegment.open(number: number, in: folder),
                      try file.damagedDictionaryCopies.isEmpty || file.file.size() > file.entriesStart else {
                    StorageDirectory.remove(folder.appending(SplitSegment.fileName(of: number)))
                    s.folderDirty = true
                    continue
                }
                try Self.take(file, from: ends[number], into: &s.heads, stray: &s.stray)
                if ends[number] != nil { fromSnapshot += 1 }
                s.files[number] = file
                s.current[bucket] = file  // numbers sort by generation within a bucket
            }
            if s.folderDirty {
                try StorageDirectory.sync(folder)
                s.folderDirty = false
            }
        }
        filesOpenedFromSnapshot = fromSnapshot
        state = Mutex(s)
        appending = (0..<count).map { _ in Mutex(CombinedWrite()) }
    }

    /// Walks `file` at open (from `start` on: the heads describe it up to there,
    /// ``BucketHeadsSnapshot``): takes its entries into the heads, notes the
    /// stray ones, and cuts the bytes after its last whole entry.
    private static func take(_ file: SplitSegment, from start: UInt64?, into heads: inout [Head], stray: inout [Link]) throws {
        let end = try file.walk(from: start) { visit in
            switch visit {
            case .entry(let offset, let envelope, let header, let intact):
                let link = Link(segment: file.number, offset: UInt32(offset))
                let index = Int(envelope.stream)
                ensure(index, in: &heads)
                let head = heads[index]
                // Only an entry that continues the chain from version 0 counts; one after a
                // lost entry of its stream (a write cut in part) is garbage.
                guard intact, header.count > 0, header.firstVersion == head.next,
                      envelope.previous == head.link else {
                    stray.append(link)
                    return true
                }
                heads[index] = head.adding(link, first: header.firstVersion, count: header.count, raw: header.rawLength)
            case .damaged(let offset, _):
                stray.append(Link(segment: file.number, offset: UInt32(offset)))
            }
            return true
        }
        if end < (try file.file.size()) {
            try file.truncate(to: end)
            try file.sync()
        }
        file.end = end
        file.syncedEnd = end
    }

    /// The bucket stream `number` belongs to.
    func bucket(of number: UInt32) -> Int { Int(number % UInt32(count)) }

    // MARK: - Reading

    /// What the buckets hold of stream `number`, if anything.
    func head(of number: UInt32) -> Head? {
        state.withLock { s in
            let index = Int(number)
            guard index < s.heads.count, !s.heads[index].link.isNone else { return nil }
            return s.heads[index]
        }
    }

    /// The version after the last one the buckets hold of stream `number` (0: none).
    func nextVersion(of number: UInt32) -> UInt64 { head(of: number)?.next ?? 0 }

    /// Stream `number`'s bucket entries holding versions at or after `floor`
    /// and, with `through`, starting at or before that version, oldest first
    /// (see ``EntryChains/entries(of:head:next:from:through:throughFile:file:)``).
    func entries(of number: UInt32, from floor: UInt64, through last: UInt64? = nil) throws -> [SplitSegment.Entry] {
        if combinesWrites { try appending[bucket(of: number)].withLock { try write(&$0) } }
        guard let head = head(of: number) else { return [] }
        return try chains.entries(of: number, head: head.link, next: head.next, from: floor, through: last) { fileNumber in
            guard let file = state.withLock({ $0.files[fileNumber] }) else {
                throw RingstoreError(.corruptData, "bucket file \(SplitSegment.fileName(of: fileNumber)) is missing but stream number \(number) still needs it",
                                     path: folder.appending(SplitSegment.fileName(of: fileNumber)).string)
            }
            return file
        }
    }

    /// Whole entries found on no stream's chain when the files were opened.
    var strayEntries: [Link] { state.withLock { $0.stray } }

    /// The bucket files' numbers and sizes, by number.
    func fileSizes() -> [(number: UInt32, bytes: UInt64)] {
        state.withLock { s in s.files.values.map { ($0.number, $0.end) }.sorted { $0.number < $1.number } }
    }

    /// The bucket files' bytes in all.
    var totalBytes: UInt64 { state.withLock { s in s.files.values.reduce(0) { $0 + $1.end } } }

    // MARK: - Writing

    /// Appends `blocks` (which must continue what the bucket holds of stream
    /// `number`: the first starts at ``nextVersion(of:)``) to the stream's
    /// bucket with one write, chained to its previous entry, and returns the
    /// version after the last. Not synced: see ``pendingSync()``.
    ///
    /// `dictionary`: what a new bucket file's small entries are compressed
    /// against (the store's ``StreamFileDictionary``), asked only when a file
    /// is created. Under the bucket's own lock (``appending``): the blocks are
    /// compressed against the bucket's current file's dictionary before the
    /// state lock is taken, and written outside it. A bucket with no file, or whose file
    /// is full, first gets a new one outside the state lock
    /// (``createNextFile(of:replacing:compress:dictionary:)``).
    @discardableResult
    func append(stream number: UInt32, blocks: [StreamBlock.RawBlock], compress: Bool,
                dictionary: () throws -> CompressionDictionary?) throws -> UInt64 {
        let blocks = blocks.filter { $0.count > 0 }
        guard let first = blocks.first else { return nextVersion(of: number) }
        let bucket = self.bucket(of: number)
        func encode(_ dictionary: CompressionDictionary?) -> [[UInt8]] {
            blocks.map { block in
                var bytes: [UInt8] = []
                StreamBlock.encode(block, compress: compress, dictionary: dictionary, into: &bytes)
                return bytes
            }
        }
        // At the device's pace (see `BucketWritebackPace`): waited for outside the lock.
        for (file, range) in state.withLock({ $0.pace.takeUnfinished() }) {
            file.file.finishWriteback(from: range.lowerBound, count: UInt64(range.count))
        }
        return try appending[bucket].withLock { combined in
            while true {
                // Changes only under this bucket's lock (``createNextFile``, below).
                let before = state.withLock { $0.current[bucket] }
                let encoded = encode(before?.dictionary)
                // Under the state lock: check the stream's head and lay the entries out after the file's end.
                let laidOut: (file: SplitSegment, offset: UInt64, bytes: [UInt8], head: Head)? = try state.withLock { s in
                    let index = Int(number)
                    let head = index < s.heads.count ? s.heads[index] : Head.empty
                    guard first.firstVersion == head.next else {
                        throw RingstoreError(.invalidArgument, "stream number \(number): bucket \(bucket) holds versions up to \(head.next), a move gave version \(first.firstVersion) next")
                    }
                    guard let file = before else { return nil }
                    let bytes = encoded.reduce(0) { $0 + SplitSegment.envelopeSize + $1.count }
                    // A full file is closed: the entry goes to a new one, created outside this lock.
                    guard Self.takes(bytes, file, limit: fileLimit) else { return nil }
                    var output: [UInt8] = []
                    output.reserveCapacity(bytes)
                    var previous = head.link
                    var newHead = head
                    for (block, stored) in zip(blocks, encoded) {
                        let offset = file.end + UInt64(output.count)
                        guard offset + UInt64(SplitSegment.envelopeSize + stored.count) < UInt64(UInt32.max) else {
                            throw RingstoreError(.invalidArgument, "bucket file \(file.path) would pass 4 GiB", path: file.path.string)
                        }
                        SplitSegment.encodeEnvelope(.init(stream: number, previous: previous, blockLength: stored.count), into: &output)
                        output += stored
                        previous = Link(segment: file.number, offset: UInt32(offset))
                        newHead = newHead.adding(previous, first: block.firstVersion, count: block.count, raw: block.raw.count)
                    }
                    return (file, file.end, output, newHead)
                }
                guard let laidOut else {
                    try write(&combined)  // what the full file still gathers, before the next one
                    try createNextFile(of: bucket, replacing: before, compress: compress, dictionary: dictionary)
                    continue
                }
                // Outside the state lock; the file's end and the head stay put meanwhile (this bucket's lock).
                entryWriting.reached()
                if combinesWrites {
                    // What is gathered is written first if this entry would not fit after it,
                    // so the buffer never grows past its size (64 of them are held).
                    if combined.bytes.count + laidOut.bytes.count > combinedWriteBytes { try write(&combined) }
                    if combined.bytes.isEmpty {
                        (combined.file, combined.start) = (laidOut.file, laidOut.offset)
                        combined.bytes.reserveCapacity(max(combinedWriteBytes, laidOut.bytes.count))
                    }
                    assert(combined.file === laidOut.file && combined.start + UInt64(combined.bytes.count) == laidOut.offset)
                    combined.bytes += laidOut.bytes
                } else {
                    try laidOut.file.write(laidOut.bytes, at: laidOut.offset)
                }
                return state.withLock { s in
                    laidOut.file.noteWritten(upTo: laidOut.offset + UInt64(laidOut.bytes.count), startingWriteback: false)
                    if !combinesWrites { s.pace.appended(UInt64(laidOut.bytes.count), to: laidOut.file) }
                    Self.ensure(Int(number), in: &s.heads)
                    s.heads[Int(number)] = laidOut.head
                    return laidOut.head.next
                }
            }
        }
    }

    /// Writes a bucket's gathered entries (``combinesWrites``), under its append
    /// lock, keeping the buffer for more unless this is the last write.
    private func write(_ combined: inout CombinedWrite, last: Bool = false) throws {
        guard let file = combined.file, !combined.bytes.isEmpty else { return }
        try file.write(combined.bytes, at: combined.start)
        combined.bytes.removeAll(keepingCapacity: !last)
        combined.file = nil
    }

    /// Writes every bucket's gathered entries (``combinesWrites``): before a
    /// sync of the files by other means (a compaction's `syncfs`).
    func flushCombinedWrites() throws {
        for bucket in appending { try bucket.withLock { try write(&$0, last: true) } }
    }

    /// Whether `file` takes an entry of `bytes` more (an empty file takes any).
    private static func takes(_ bytes: Int, _ file: SplitSegment, limit: UInt64) -> Bool {
        file.end + UInt64(bytes) <= limit || file.end == file.entriesStart
    }

    /// Creates `bucket`'s next file after `replaced` (its newest file, found
    /// full, or nil when the bucket has none) and makes it the bucket's current
    /// file. Called with the bucket's append lock held.
    ///
    /// The new file's header and dictionary are made durable before it is
    /// installed, so before any entry follows them: a cut may otherwise keep
    /// entries compressed against a dictionary it lost (unsynced pages reach
    /// the disk in any order), and opening would take those entries into chains
    /// that no read can decode. (A lost folder entry loses the whole file,
    /// entries included: the segments still hold them.)
    ///
    /// That sync runs under the bucket's append lock and ``creation``, not the
    /// buckets' state lock, so that reads of bucketed streams and moves into
    /// other files never wait a device sync (up to about 100 ms on an SD card);
    /// the bucket's lock keeps two moves into one full bucket from both
    /// creating its next generation.
    private func createNextFile(of bucket: Int, replacing replaced: SplitSegment?, compress: Bool,
                                dictionary: () throws -> CompressionDictionary?) throws {
        try creation.withLock { _ in
            let generation = replaced.flatMap { Self.bucketAndGeneration(of: $0.number)?.generation }.map { $0 + 1 } ?? 0
            if !StorageDirectory.isDirectory(folder) {
                try StorageDirectory.create(folder)
                state.withLock { $0.folderDirty = true }
            }
            let file = try SplitSegment.create(number: Self.fileNumber(bucket: bucket, generation: generation), in: folder,
                                               dictionary: compress ? try dictionary() : nil)
            do {
                newFileSyncing.reached()
                if syncsNewFiles { try file.sync() }
            } catch {
                StorageDirectory.remove(file.path)
                throw error
            }
            state.withLock { s in
                s.files[file.number] = file
                s.current[bucket] = file
                s.folderDirty = true
            }
        }
    }

    /// Hands what was appended and not yet started to the device, a file at a
    /// time at the device's pace (``BucketWritebackPace``), so that the sync
    /// that follows (the mover's batch sync) finds little left to write and puts
    /// no burst in front of the journal's flushes.
    func drainWriteback() {
        while true {
            let (waits, more) = state.withLock { s in
                let more = s.pace.startLargestPending()
                return (s.pace.takeUnfinished(), more)
            }
            for (file, range) in waits { file.file.finishWriteback(from: range.lowerBound, count: UInt64(range.count)) }
            if !more { return }
        }
    }

    /// Forgets stream `number`'s chain: its history is in a stream file of its
    /// own now, synced (its entries stay in the files as garbage until an
    /// offline compaction drops them, and the next open finds them again, to
    /// be passed over since the file reaches as far).
    func forget(stream number: UInt32) {
        appending[bucket(of: number)].withLock { _ in  // an append of the stream is never half done meanwhile
            state.withLock { s in
                let index = Int(number)
                if index < s.heads.count { s.heads[index] = Head.empty }
            }
        }
    }

    // MARK: - Syncing

    /// What a sync must make durable: each file with bytes not known durable,
    /// up to where it ends now, and whether its last sync failed (its unsynced
    /// bytes are then written again first: ``SyncPlan/rewriteIfFailed()``).
    struct SyncPlan: Sendable {
        fileprivate var files: [(file: SplitSegment, target: UInt64, rewriteFrom: UInt64?)]
        /// A bucket file was created since the folder was last synced.
        fileprivate var folderDirty: Bool
        var isEmpty: Bool { files.isEmpty && !folderDirty }
        /// The files to write back (or sync) for it.
        var storageFiles: [StorageFile] { files.map(\.file.file) }

        /// Writes again the bytes of files whose last sync failed.
        func rewriteIfFailed() throws {
            for item in files { if let from = item.rewriteFrom { try item.file.file.rewrite(from: from, to: item.target) } }
        }
    }

    /// The files with appended bytes not yet known durable.
    func pendingSync() -> SyncPlan {
        assert(!combinesWrites || appending.allSatisfy { $0.withLock { $0.bytes.isEmpty } },
               "a combining bucket set is synced through sync() or after flushCombinedWrites()")
        return state.withLock { s in
            SyncPlan(files: s.files.values.filter { $0.syncedEnd < $0.end || $0.syncFailed }.sorted { $0.number < $1.number }
                        .map { ($0, $0.end, $0.syncFailed ? $0.syncedEnd : nil) },
                     folderDirty: s.folderDirty)
        }
    }

    /// Records that a sync covering `plan` (a journal commit or `syncfs`, which
    /// also made the new files' folder entries durable) succeeded.
    func synced(_ plan: SyncPlan) {
        state.withLock { s in
            for item in plan.files {
                item.file.syncFailed = false
                item.file.syncedEnd = max(item.file.syncedEnd, item.target)
            }
            if plan.folderDirty { s.folderDirty = false }
        }
    }

    /// Records that a sync covering `plan` failed: its files write their unsynced bytes again before the next.
    func syncFailed(_ plan: SyncPlan) {
        state.withLock { s in
            for item in plan.files { item.file.syncFailed = true }
            s.syncEverFailed = true
        }
    }

    /// Writes a snapshot of the heads (``BucketHeadsSnapshot``) if the files
    /// grew by ``snapshotGrowth`` since the last one, every file is synced to
    /// its end, and no append is in flight; true if it wrote one. For the
    /// segment mover, right after a batch's sync: a stream's chain is
    /// forgotten (promoted) once its own file holds its history, before the
    /// batch's sync, which made that file durable; so the heads forget no
    /// chain a cut could need. After a failed sync that no longer holds (a
    /// file's pages may have been dropped while its chain stayed forgotten),
    /// so no snapshot is written again in this process: opening then walks
    /// the files whole and finds such a chain again, as without snapshots.
    /// A snapshot that cannot be written is left for the next call.
    @discardableResult
    func writeSnapshotIfGrown() -> Bool {
        guard !combinesWrites else { return false }
        return snapshotting.withLock { _ in
            // Every bucket's lock: no append between reading a head and installing the next.
            var bytes: (encoded: [UInt8], total: UInt64)? = nil
            withEveryBucketLock {
                bytes = state.withLock { s in
                    let total = s.files.values.reduce(0) { $0 + $1.end }
                    // Every file's bytes and name durable (a name lost to a cut would only make opening refuse it).
                    guard !s.syncEverFailed, !s.folderDirty, total >= s.snapshotBytes + snapshotGrowth,
                          s.files.values.allSatisfy({ $0.syncedEnd >= $0.end && !$0.syncFailed }) else { return nil }
                    let files = s.files.values.map { BucketHeadsSnapshot.FileEnd(number: $0.number, end: $0.end) }.sorted { $0.number < $1.number }
                    return (BucketHeadsSnapshot(files: files, heads: s.heads).encoded(), total)
                }
            }
            guard let bytes else { return false }
            do { try BucketHeadsSnapshot.write(bytes.encoded, in: folder) } catch { return false }
            state.withLock { $0.snapshotBytes = bytes.total }
            return true
        }
    }

    /// Runs `body` holding every bucket's ``appending`` lock, taken in order.
    private func withEveryBucketLock(from index: Int = 0, _ body: () -> Void) {
        guard index < appending.count else { return body() }
        appending[index].withLock { _ in withEveryBucketLock(from: index + 1, body) }
    }

    /// Makes everything appended durable on its own: each file's `fdatasync`,
    /// then the folder and `streams/` when a file was created. (The mover's
    /// batches sync the buckets together with their stream files instead.)
    func sync() throws {
        if combinesWrites { try flushCombinedWrites() }
        let plan = pendingSync()
        guard !plan.isEmpty else { return }
        do {
            try plan.rewriteIfFailed()
            for item in plan.files { try item.file.file.syncData() }
            if plan.folderDirty {
                try StorageDirectory.sync(folder)
                try StorageDirectory.sync(parent)
            }
        } catch {
            syncFailed(plan)
            throw error
        }
        synced(plan)
    }
}
