import Dispatch
import SystemPackage
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The result of checking a closed store.
package struct VerifyReport: Sendable {
    /// Everything found, harmless findings included, in file order.
    package var findings: [MaintenanceProblem] = []
    package var inventory = StoreInventory()
    /// Bytes read from the store's files.
    package var bytesRead: UInt64 = 0
    package var seconds: Double = 0

    /// Findings that make the store not clean.
    package var problems: [MaintenanceProblem] { findings.filter { !$0.harmless } }
    package var isClean: Bool { problems.isEmpty }
}

/// Checks every checksummed byte of a closed store against the engine's codecs:
/// the journal (``JournalVerifier``), the catalog, every stream file and its
/// index (``StreamFileVerifier``), the bucket files, the split segments, and the
/// global index against the stream files, bucket chains and segments (each entry names a stored event at
/// its position, in position order, and every stored event has one).
///
/// Read-only: it never opens the store (opening truncates damaged tails), only
/// reads its files. The caller holds the store's lock.
struct StoreVerifier {
    let directory: FilePath
    /// Called now and then with (files done, files in all).
    var progress: (Int, Int) -> Void = { _, _ in }
    /// Handed every segment entry, if it accepts, by a walk of its own on a thread of its
    /// own while the verification runs (a compaction gathers them; ``SegmentRouting``).
    var segmentSink: SegmentRouting? = nil

    func verify() -> VerifyReport {
        var verifier = self
        return verifier.verifyAll()
    }

    private mutating func verifyAll() -> VerifyReport {
        let started = ContinuousClock.now
        var report = VerifyReport()
        var problems: [MaintenanceProblem] = []

        let journal = JournalVerifier(directory: directory).verify(into: &problems)
        var inventory = StoreInventory()
        if let header = journal.header {
            inventory.capacity = header.capacity
            inventory.checkpoint = header.checkpoint
            inventory.epoch = header.epoch
            inventory.headerSequence = header.sequence
            inventory.closedCleanly = header.closedCleanly
        }
        inventory.journalEnd = journal.end
        inventory.journalRecordsAfterCheckpoint = journal.recordsAfterCheckpoint
        inventory.journalHistoryRecords = journal.historyRecords
        inventory.journalBytes = journal.fileBytes
        report.bytesRead += journal.fileBytes
        let checkpoint = journal.header?.checkpoint ?? 0
        // In a store that was not closed cleanly, what lies at or after the checkpoint
        // was not synced and is cut or derived again at open: findings there are harmless.
        let replayFrom: UInt64 = journal.header.map { $0.closedCleanly ? UInt64.max : $0.checkpoint } ?? .max

        var streams = verifyCatalog(into: &problems, inventory: &inventory, bytesRead: &report.bytesRead, unclean: replayFrom != .max)
        var numbers: [String: Int] = [:]
        numbers.reserveCapacity(streams.count)
        for (i, stream) in streams.enumerated() { numbers[stream.name] = i }

        // Stream files.
        let files = streamFiles(into: &problems)
        let segmentFiles = (try? StorageDirectory.entries(of: directory.appending("split")))?
            .filter { SplitSegment.number(inFileName: $0) != nil }.sorted() ?? []
        // A compaction's routing of the segment entries (``SegmentRouting``) runs on a thread of
        // its own from here on, its own walk over the segments beside this verification's,
        // joined at the end. It needs only the catalog's size and the journal's header.
        var routing: (sink: SegmentRouting, thread: BackgroundThread)? = nil
        let pacing = segmentSink == nil ? nil : DispatchSemaphore(value: SegmentRouting.routingLead)
        if let sink = segmentSink, let pacing {
            let bytes = segmentFiles.reduce(UInt64(0)) { $0 + fileSize(directory.appending("split").appending($1)) }
            if sink.begin(streams: streams.count, closedCleanly: inventory.closedCleanly, checkpoint: checkpoint, segmentFileBytes: bytes),
               let thread = sink.startRouting(segments: segmentFiles, in: directory.appending("split"), pacing: pacing, owner: directory.string) {
                routing = (sink, thread)
            }
        }
        defer { if let routing { routing.sink.joinRouting(routing.thread) } }
        let bucketFiles = bucketFileNames()
        let totalFiles = files.count + bucketFiles.count + segmentFiles.count
        var checker = BlockChecker()
        var fileVerifier = StreamFileVerifier(directory: directory, dictionary: verifyStreamFileDictionary(into: &problems))
        if replayFrom != .max {
            // A damaged header names no stream: its file's name does, hashed (unclean stores only,
            // where a cut may tear one). Looked for only then: hashing every name up front cost
            // every verify of an unclean store, damaged header or not.
            let names = streams.map(\.name)
            fileVerifier.streamNamed = { hash in names.first { StreamNaming.hash($0) == hash } }
            let whole = journal.streamsFromVersionZero
            fileVerifier.journalHoldsWhole = { whole.contains($0) }
        }
        let windows = (data: ReadWindow(bytes: 1 << 20), index: ReadWindow(bytes: 1 << 16))
        inventory.fileByNumber = Array(repeating: nil, count: streams.count)
        // Findings in an unclean store's stream files that the split segments may
        // make harmless, by stream number (see `StreamFileVerifier.Outcome.rebuildable`).
        var rebuildable: [(number: Int, findings: [StreamFileVerifier.Rebuildable])] = []
        for (i, relative) in files.enumerated() {
            if i % 256 == 0 { progress(i, totalFiles) }
            let outcome = fileVerifier.verify(relative: relative, replayFrom: replayFrom, checkpoint: checkpoint, checker: &checker,
                                              windows: windows, bytesRead: &report.bytesRead, into: &problems)
            inventory.streamFiles += 1
            inventory.streamFileBytes += outcome.bytes
            inventory.blocks += outcome.blocks
            inventory.storedBytes += outcome.storedBytes
            if outcome.hasIndex { inventory.indexFiles += 1; inventory.indexFileBytes += outcome.indexBytes }
            if outcome.name == nil, let named = outcome.damagedHeaderOf, let number = numbers[named], let last = problems.indices.last,
               !problems[last].harmless, problems[last].file == relative {
                rebuildable.append((number, [StreamFileVerifier.Rebuildable(problem: last, firstVersion: 0)]))
            }
            guard let name = outcome.name else { continue }
            guard let number = numbers[name] else {
                // In a store not closed cleanly the catalog's record may be in a tail a cut tore:
                // opening cuts it and the journal names the stream again.
                problems.append(MaintenanceProblem(file: relative, offset: 16, what: "stream \"\(name.prefix(80))\" has a file but no catalog entry"
                                                   + (replayFrom != .max ? " (the store was not closed cleanly: the journal names it again at open)" : ""),
                                                   stream: name, harmless: replayFrom != .max))
                continue
            }
            if streams[number].hasFile {
                problems.append(MaintenanceProblem(file: relative, offset: 16, what: "a second file for stream \"\(name.prefix(80))\"", stream: name))
                continue
            }
            streams[number].hasFile = true
            if !outcome.rebuildable.isEmpty { rebuildable.append((number, outcome.rebuildable)) }
            streams[number].base = outcome.base
            streams[number].next = outcome.base + UInt64(outcome.events)
            streams[number].lastPosition = outcome.lastPosition
            streams[number].covered = outcome.covered
            streams[number].unknownPositions = outcome.unknownPositions
            streams[number].fileBlocks = outcome.blocks
            streams[number].fileBytes = outcome.bytes + outcome.indexBytes
            inventory.fileByNumber[number] = VerifiedStreamFile(relative: relative, nextVersion: outcome.base + UInt64(outcome.events), bytes: outcome.bytes)
        }
        numbers = [:]
        inventory.fileRawBytes = checker.rawBytes
        inventory.fileStoredBytes = inventory.storedBytes
        inventory.fileEvents = streams.reduce(0) { $0 + Int($1.next - $1.base) }

        // Bucket files: each stream's chain continues its file where it reaches further.
        let bucketFindings = verifyBuckets(bucketFiles, streams: &streams, checker: &checker, checkpoint: checkpoint,
                                           replayFrom: replayFrom, into: &problems, inventory: &inventory,
                                           bytesRead: &report.bytesRead) { progress(files.count + $0, totalFiles) }
        // Split segments: entries continue their streams' files and bucket chains.
        verifySegments(segmentFiles, streams: &streams, checker: &checker, checkpoint: checkpoint, replayFrom: replayFrom,
                       into: &problems, inventory: &inventory, bytesRead: &report.bytesRead) {
            pacing?.signal()  // called as each segment begins: the routing may start one more
            progress(files.count + bucketFiles.count + $0, totalFiles)
        }
        // A move into a stream file that a power cut interrupted before the file's sync
        // leaves torn blocks whose events the segments still hold: opening cuts them there.
        for (number, findings) in rebuildable {
            for finding in findings where streams[number].segmentFrom <= finding.firstVersion && !problems[finding.problem].harmless {
                problems[finding.problem].harmless = true
                problems[finding.problem].what += " (the split segments hold every version from \(streams[number].segmentFrom) on: opening cuts this and the mover writes it again)"
            }
            // A promotion out of the bucket cut before the file's sync: the chain still reaches further.
            for finding in findings where streams[number].bucketNext > finding.firstVersion && !problems[finding.problem].harmless {
                problems[finding.problem].harmless = true
                problems[finding.problem].what += " (the stream's bucket chain holds versions up to \(streams[number].bucketNext): opening cuts this and reads take the chain)"
            }
        }
        // Whatever happened, the routing is no longer held back. (This also keeps the
        // semaphore's count at or above its starting value, which libdispatch requires
        // when it is freed: the routing waits once per segment, here signalled twice.)
        for _ in segmentFiles.indices { pacing?.signal() }
        inventory.rawBytes = checker.rawBytes

        verifyGlobalIndex(streams: &streams, checkpoint: checkpoint, replayFrom: replayFrom, into: &problems,
                          inventory: &inventory, bytesRead: &report.bytesRead)
        settleBucketFindings(bucketFindings, streams: streams, unclean: replayFrom != .max, into: &problems)
        inventory.segmentBytesByNumber = streams.map(\.segmentBytes)
        for stream in streams where stream.events > 0 {
            inventory.events += stream.events
            inventory.streams.append((stream.name, stream.events, stream.fileBlocks + stream.bucketEntries + stream.segmentEntries,
                                      stream.fileBytes + stream.bucketBytes + stream.segmentBytes))
        }
        progress(totalFiles, totalFiles)
        report.findings = problems
        report.inventory = inventory
        report.seconds = (ContinuousClock.now - started).seconds
        return report
    }

    /// The stream files' dictionary (``StreamFileDictionary``), if the store has
    /// one and a copy of it is intact; each damaged part of its file is a problem.
    private func verifyStreamFileDictionary(into problems: inout [MaintenanceProblem]) -> CompressionDictionary? {
        let relative = "\(StreamNaming.folder)/\(StreamFileDictionary.fileName)"
        do {
            guard let reading = try StreamFileDictionary.read(in: directory) else { return nil }
            let lost = reading.dictionary == nil ? ": no copy is intact, so no block compressed against it can be read" : " (the other copy is intact)"
            for (offset, what) in reading.damage {
                problems.append(MaintenanceProblem(file: relative, offset: offset, what: what + lost))
            }
            return reading.dictionary
        } catch {
            problems.append(MaintenanceProblem(file: relative, offset: nil, what: "cannot read: \(error)"))
            return nil
        }
    }

    /// Every `streams/xx/*.stream` file, relative to the store, sorted.
    private func streamFiles(into problems: inout [MaintenanceProblem]) -> [String] {
        let root = directory.appending(StreamNaming.folder)
        guard StorageDirectory.isDirectory(root) else {
            problems.append(MaintenanceProblem(file: StreamNaming.folder, offset: nil, what: "the streams folder is missing"))
            return []
        }
        var result: [String] = []
        let folders = ((try? StorageDirectory.entries(of: root)) ?? []).sorted()
        for folder in folders where folder != "." && folder != ".." {
            let path = root.appending(folder)
            guard StorageDirectory.isDirectory(path) else { continue }
            for name in ((try? StorageDirectory.entries(of: path)) ?? []).sorted() where name.hasSuffix("." + StreamNaming.fileExtension) {
                result.append("\(StreamNaming.folder)/\(folder)/\(name)")
            }
        }
        return result
    }

    /// Reads the catalog's records (number ↔ name), reporting the first damaged one.
    ///
    /// `unclean`: the store was not closed cleanly. Opening then cuts the catalog at its
    /// first damaged record, and the streams named after it are named again as the
    /// journal is split from the checkpoint (a checkpoint never passes a record not
    /// synced), so the damage is harmless; a stream whose name it really lost shows as
    /// a number the catalog does not have in the files that name it.
    func verifyCatalog(into problems: inout [MaintenanceProblem], inventory: inout StoreInventory,
                       bytesRead: inout UInt64, unclean: Bool = false) -> [StreamTally] {
        var streams: [StreamTally] = []
        let fileName = StreamCatalog.fileName
        let found = problems.count
        defer {
            if unclean {
                for index in found..<problems.count where !problems[index].harmless {
                    problems[index].harmless = true
                    problems[index].what += " (the store was not closed cleanly: opening cuts the catalog here, and the journal names these streams again)"
                }
            }
        }
        let path = directory.appending(fileName)
        guard StorageDirectory.exists(path) else {
            problems.append(MaintenanceProblem(file: fileName, offset: nil, what: "the catalog is missing"))
            return streams
        }
        do {
            let file = try StorageFile.open(path)
            defer { file.close() }
            var reader = try SequentialReader(file: file)
            defer { bytesRead += reader.bytesRead }
            inventory.catalogBytes = reader.size
            var offset: UInt64 = 0
            while offset < reader.size {
                guard let record = try reader.bytes(at: offset, count: 12) else {
                    problems.append(MaintenanceProblem(file: fileName, offset: offset, what: "\(reader.size - offset) bytes after the last record are no whole record"))
                    break
                }
                let length = Int(UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
                let crc = UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let number = UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
                guard length >= 5, length <= 4 + NameRules.maxStreamNameBytes, let body = try reader.bytes(at: offset + 8, count: length) else {
                    problems.append(MaintenanceProblem(file: fileName, offset: offset, what: "record length \(length) is invalid; \(reader.size - offset) bytes from here were not read"))
                    break
                }
                guard CRC32C.checksum(body) == crc else {
                    problems.append(MaintenanceProblem(file: fileName, offset: offset, what: "record checksum mismatch (stream number \(number)); \(reader.size - offset) bytes from here were not read"))
                    break
                }
                guard number == UInt32(streams.count) else {
                    problems.append(MaintenanceProblem(file: fileName, offset: offset, what: "record numbers stream \(number), expected \(streams.count)"))
                    break
                }
                streams.append(StreamTally(name: String(decoding: UnsafeRawBufferPointer(rebasing: body[4...]), as: UTF8.self)))
                offset += UInt64(8 + length)
            }
        } catch {
            problems.append(MaintenanceProblem(file: fileName, offset: nil, what: "read failed: \(error)"))
        }
        inventory.catalogNames = streams.count
        return streams
    }

    /// Every segment's entries: envelope, block and payload intact, the stream number
    /// known; their events extend their streams' files, in version order, with
    /// no gap (entries below a file's end are copies already moved: checked
    /// whole, but only the versions past the file's end are the stream's).
    /// Each segment is read once, its payloads checked straight from the read buffer.
    private func verifySegments(_ names: [String], streams: inout [StreamTally], checker: inout BlockChecker,
                                checkpoint: UInt64, replayFrom: UInt64,
                                into problems: inout [MaintenanceProblem], inventory: inout StoreInventory,
                                bytesRead: inout UInt64, progress: (Int) -> Void) {
        let hot = StreamTally.segmentHot
        let summaryNames = Set((try? StorageDirectory.entries(of: directory.appending("split")))?.filter { SegmentSummary.number(inFileName: $0) != nil } ?? [])
        inventory.segmentSummaries = summaryNames.count
        inventory.segmentSummaryBytes = summaryNames.reduce(0) { $0 + fileSize(directory.appending("split").appending($1)) }
        for name in summaryNames.sorted() where !names.contains(SplitSegment.fileName(of: SegmentSummary.number(inFileName: name)!)) {
            problems.append(MaintenanceProblem(file: "split/\(name)", offset: nil, what: "summary of a segment that is not there (opening removes it)", harmless: true))
        }
        // In a store not closed cleanly, opening keeps the segments up to the end of the
        // last entry that begins before the checkpoint and cuts everything after it (the
        // journal supplies it again): findings after it are harmless, known at the end.
        let unclean = replayFrom != .max
        var lastBeforeCheckpoint: (segment: Int, offset: UInt64)?
        var located: [(problem: Int, segment: Int, offset: UInt64)] = []
        defer {
            for finding in located where !problems[finding.problem].harmless {
                guard lastBeforeCheckpoint.map({ ($0.segment, $0.offset) < (finding.segment, finding.offset) }) ?? true else { continue }
                problems[finding.problem].harmless = true
                problems[finding.problem].what += " (after the last entry before the checkpoint: opening cuts it, the journal supplies it again)"
            }
        }
        for (i, name) in names.enumerated() {
            progress(i)
            let relative = "split/\(name)"
            func problem(_ offset: UInt64?, _ what: String, harmless: Bool = false, stream: String? = nil) {
                if unclean, let offset { located.append((problems.count, i, offset)) }
                problems.append(MaintenanceProblem(file: relative, offset: offset, what: what, stream: stream, harmless: harmless))
            }
            guard let number = SplitSegment.number(inFileName: name) else { continue }
            do {
                guard let segment = try SplitSegment.open(number: number, in: directory.appending("split")) else {
                    problem(0, "segment has no header (never written)", harmless: true)
                    continue
                }
                let size = try segment.file.size()
                inventory.segments += 1
                inventory.segmentBytes += size
                bytesRead += size
                if segment.entriesStart == UInt64(SplitSegment.headerSize) {  // format 1: no dictionary area
                    var header = [UInt8](repeating: 0, count: SplitSegment.headerSize)
                    _ = try header.withUnsafeMutableBytes { try segment.file.read(into: $0, at: 0) }
                    if header[20..<24].contains(where: { $0 != 0 }) { problem(20, "reserved header bytes are not zero") }
                }
                for (offset, what) in Self.dictionaryFindings(of: segment) { problem(offset, what) }
                var summary = SegmentSummary.Builder(segment: number)
                let end = try segment.walk(checkingPayloads: false, chunkBytes: 4 << 20, lookahead: Prefetch.rowsAhead) { visit, block, upcoming in
                    // The rows of a stream some entries ahead: their cache misses overlap this entry's checks.
                    if let upcoming {
                        Prefetch.element(of: &streams, at: Int(upcoming), bytes: hot)
                    }
                    switch visit {
                    case .entry(let offset, let envelope, let header, _):
                        inventory.segmentEntries += 1
                        summary.add(stream: envelope.stream, offset: offset, header: header)
                        if header.firstPosition < checkpoint { lastBeforeCheckpoint = (i, offset) }
                        guard Int(envelope.stream) < streams.count else {
                            problem(offset, "entry names stream number \(envelope.stream), which the catalog does not have")
                            return true
                        }
                        let stored = UnsafeRawBufferPointer(rebasing: block[StreamBlock.headerSize...])
                        joinEntry(offset: offset, header: header, stored: stored, blockBytes: UInt64(SplitSegment.envelopeSize + header.totalLength),
                                  dictionary: segment.dictionary,
                                  stream: &streams[Int(envelope.stream)], checker: &checker, checkpoint: checkpoint,
                                  inventory: &inventory, problem: { problem(offset, $0, stream: $1) })
                    case .damaged(let offset, let next):
                        summary.spoil()
                        problem(offset, "\(next - offset) bytes are no whole entry")
                    }
                    return true
                }
                if end < size { problem(end, "\(size - end) bytes at the end are no whole entry (a torn write)", harmless: replayFrom != .max) }
                if summaryNames.contains(SegmentSummary.fileName(of: number)) {
                    verifySummary(of: number, expected: end == size ? summary.encoded(size: size) : nil, segmentSize: size, into: &problems)
                }
                segmentSink?.walked(segment: i, file: segment.file)
            } catch {
                problem(nil, "\(error)")
            }
        }
    }

    /// Checks segment `number`'s summary file (``SegmentSummary``) against
    /// `expected`, the bytes of the summary of the segment's entries as walked
    /// (nil when the segment, of `segmentSize` bytes, holds damage or a torn
    /// tail, which its summary cannot describe).
    func verifySummary(of number: UInt32, expected: [UInt8]?, segmentSize: UInt64, into problems: inout [MaintenanceProblem]) {
        let name = SegmentSummary.fileName(of: number)
        let relative = "split/\(name)"
        let bytes: [UInt8]
        do { bytes = try StorageFile.readWhole(directory.appending("split").appending(name)) } catch {
            problems.append(MaintenanceProblem(file: relative, offset: nil, what: "\(error)"))
            return
        }
        let decoded = SegmentSummary.decode(bytes, segment: number)
        guard let wanted = expected else {
            if decoded == nil {
                problems.append(MaintenanceProblem(file: relative, offset: 0, what: "segment summary is damaged (opening walks the segment instead)"))
            }
            return
        }
        if let decoded, decoded.segmentSize != segmentSize {
            // Left by a crash between cutting the segment and removing its summary: never trusted.
            problems.append(MaintenanceProblem(file: relative, offset: 16, what: "segment summary describes \(decoded.segmentSize) bytes of a segment of \(segmentSize) (opening walks the segment and writes it again)", harmless: true))
            return
        }
        guard bytes != wanted else { return }
        let at = zip(bytes, wanted).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(bytes.count, wanted.count)
        problems.append(MaintenanceProblem(file: relative, offset: UInt64(at), what: decoded == nil
            ? "segment summary is damaged (opening walks the segment instead)"
            : "segment summary disagrees with the segment's entries"))
    }

    /// The damaged copies of a segment's or bucket file's dictionary, as findings (offset, what).
    static func dictionaryFindings(of segment: SplitSegment) -> [(offset: UInt64, what: String)] {
        let both = segment.damagedDictionaryCopies.count == 2
        return segment.damagedDictionaryCopies.map { offset in
            (offset, both ? "copy of the compression dictionary is damaged, and so is the other: entries compressed against it cannot be read"
                          : "copy of the compression dictionary is damaged (the other copy is intact)")
        }
    }

    /// Checks one segment entry's block (or, `bucket`, a bucket chain's) and joins its events onto `stream`.
    func joinEntry(offset: UInt64, header: StreamBlock.Header, stored: UnsafeRawBufferPointer, blockBytes: UInt64,
                   dictionary: CompressionDictionary?, stream: inout StreamTally, checker: inout BlockChecker, checkpoint: UInt64,
                   inventory: inout StoreInventory, bucket: Bool = false, problem: (String, String) -> Void) {
        if stream.events == 0 && !stream.hasFile { stream.base = header.firstVersion; stream.next = header.firstVersion }
        let first = header.firstVersion
        let end = first + UInt64(header.count)
        guard first <= stream.next else {
            problem("entry of stream \"\(stream.name.prefix(80))\" starts at version \(first) but its file and earlier entries end at \(stream.next)",
                    stream.name)
            _ = checkOnly(header: header, stored: stored, dictionary: dictionary, checker: &checker, problem: { problem($0, stream.name) })
            return
        }
        // Versions below the stream's end so far are copies already moved into its file.
        let skip = Int(min(stream.next, end) - first)
        var run = PositionRun(limit: checkpoint)
        if let why = checker.check(header: header, stored: stored, skip: skip, dictionary: dictionary, run: &run) {
            problem(why, stream.name)
            if end > stream.next { stream.unknownPositions = true; stream.next = end }
            return
        }
        inventory.storedBytes += UInt64(header.storedLength)
        if bucket {
            stream.bucketEntries += 1
            stream.bucketBytes += blockBytes
        } else {
            // A stream's entries come in version order, so positions rise: if its first is past the checkpoint, all are.
            if stream.segmentEntries == 0 && header.firstPosition < checkpoint { stream.segmentFrom = first }
            stream.segmentEntries += 1
            stream.segmentBytes += blockBytes
        }
        guard run.count > 0 else { return }
        if let last = stream.lastPosition, let firstPosition = run.first, firstPosition <= last {
            problem("entry of stream \"\(stream.name.prefix(80))\" has version \(stream.next) at journal position \(firstPosition), not after the previous version's \(last)",
                    stream.name)
        }
        stream.covered.append(run.covered)
        stream.lastPosition = run.last
        stream.next = end
    }

    /// Checks a block whose events are not joined anywhere.
    func checkOnly(header: StreamBlock.Header, stored: UnsafeRawBufferPointer, dictionary: CompressionDictionary? = nil,
                           checker: inout BlockChecker, problem: (String) -> Void) -> Bool {
        var run = PositionRun(limit: 0)
        if let why = checker.check(header: header, stored: stored, skip: header.count, dictionary: dictionary, run: &run) { problem(why); return false }
        return true
    }

    /// The global index: every entry intact, positions rising, naming a stored event.
    /// Each stream's entries before the checkpoint must name its stored versions
    /// in order from its first, none missing, at the positions the stream holds:
    /// checked entry by entry for versions, and for positions by comparing the
    /// digests of the two sequences (``PositionDigest``), so no table of every
    /// event's position is needed.
    private func verifyGlobalIndex(streams: inout [StreamTally], checkpoint: UInt64, replayFrom: UInt64,
                                   into problems: inout [MaintenanceProblem], inventory: inout StoreInventory,
                                   bytesRead: inout UInt64) {
        let fileName = GlobalIndex.fileName
        let path = directory.appending(fileName)
        guard StorageDirectory.exists(path) else {
            problems.append(MaintenanceProblem(file: fileName, offset: nil, what: "the global index is missing"))
            return
        }
        func problem(_ offset: UInt64?, _ what: String, harmless: Bool = false) {
            problems.append(MaintenanceProblem(file: fileName, offset: offset, what: what, harmless: harmless))
        }
        let hot = StreamTally.indexHot
        do {
            let file = try StorageFile.open(path)
            defer { file.close() }
            let size = try file.size()
            inventory.globalIndexBytes = size
            let entrySize = GlobalIndex.entrySize
            if size % UInt64(entrySize) != 0 {
                problem(size - size % UInt64(entrySize), "\(size % UInt64(entrySize)) bytes after the last whole entry", harmless: replayFrom != .max)
            }
            let total = Int(size) / entrySize
            inventory.globalIndexEntries = total
            let perChunk = (4 << 20) / entrySize
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: perChunk * entrySize, alignment: 16)
            defer { chunk.deallocate() }
            var lastPosition: UInt64? = nil
            var reported = 0
            // Of the findings past the cap: those that are problems whatever follows, and the
            // first damaged entry of an unclean store (harmless if opening drops it, see below).
            var unlistedProblems = 0
            var firstUnlistedDamage: Int?
            func report(_ offset: UInt64, _ what: String, harmless: Bool, damagedEntry: Int? = nil) {
                // A damaged region would repeat the same finding for every entry: cap them.
                if reported < 1000 {
                    problem(offset, what, harmless: harmless)
                } else if let damagedEntry {
                    firstUnlistedDamage = min(firstUnlistedDamage ?? damagedEntry, damagedEntry)
                } else if !harmless {
                    unlistedProblems += 1
                }
                reported += 1
            }
            // Unclean store: opening keeps the entries up to the last intact one before the
            // checkpoint and drops the rest, damaged ones among them (`GlobalIndex.truncate`).
            var lastKeptEntry = -1
            var damagedEntries: [(problem: Int, entry: Int)] = []
            defer {
                for damaged in damagedEntries where damaged.entry > lastKeptEntry {
                    problems[damaged.problem].harmless = true
                    problems[damaged.problem].what += " (after the last intact entry before the checkpoint: opening drops it)"
                }
            }
            var index = 0
            while index < total {
                let count = min(perChunk, total - index)
                let wanted = count * entrySize
                var got = 0
                while got < wanted {
                    let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: chunk[got..<wanted]), at: UInt64(index * entrySize + got))
                    if n == 0 { break }
                    got += n
                }
                bytesRead += UInt64(got)
                let entries = got / entrySize
                for i in 0..<entries {
                    let offset = UInt64((index + i) * entrySize)
                    let start = i * entrySize
                    // The row of the stream some entries ahead (its number unchecked: a hint).
                    if i + Prefetch.rowsAhead < entries {
                        let upcoming = LittleEndian.load(UInt32.self, from: UnsafeRawBufferPointer(chunk), at: start + Prefetch.rowsAhead * entrySize + 16)
                        Prefetch.element(of: &streams, at: Int(upcoming), bytes: hot)
                    }
                    guard let entry = GlobalIndex.decode(UnsafeRawBufferPointer(rebasing: chunk[start..<(start + entrySize)])) else {
                        if replayFrom != .max && reported < 1000 { damagedEntries.append((problems.count, index + i)) }
                        report(offset, "entry \(index + i): checksum mismatch", harmless: false,
                               damagedEntry: replayFrom != .max ? index + i : nil)
                        continue
                    }
                    // Unclean store: entries from the checkpoint on are dropped at open.
                    let harmless = entry.position >= replayFrom
                    if !harmless { lastKeptEntry = index + i }
                    if let last = lastPosition, entry.position <= last {
                        report(offset, "entry \(index + i): position \(entry.position) is not after the previous entry's \(last)", harmless: harmless)
                    }
                    lastPosition = entry.position
                    guard Int(entry.stream) < streams.count else {
                        report(offset, "entry \(index + i) names stream number \(entry.stream), which the catalog does not have", harmless: harmless)
                        continue
                    }
                    let number = Int(entry.stream)
                    let base = streams[number].base
                    let next = streams[number].next
                    guard entry.version >= base, entry.version < next else {
                        report(offset, "entry \(index + i) names version \(entry.version) of stream \"\(streams[number].name.prefix(80))\", which is not stored (stored: \(base)..<\(next))",
                               harmless: harmless)
                        continue
                    }
                    guard entry.position < checkpoint else { continue }
                    let expected = streams[number].indexNext ?? base
                    if entry.version != expected {
                        report(offset, "entry \(index + i) names version \(entry.version) of stream \"\(streams[number].name.prefix(80))\", but its next unindexed version is \(expected) (out of order, or entries missing)",
                               harmless: false)
                        streams[number].indexBroken = true
                    }
                    streams[number].indexNext = entry.version + 1
                    streams[number].indexed.add(entry.position)
                }
                index += count
                if got < wanted { break }
            }
            if reported > 1000 {
                // Harmless if each of them is: opening drops damaged entries past the last one it keeps.
                let harmless = unlistedProblems == 0 && (firstUnlistedDamage.map { $0 > lastKeptEntry } ?? true)
                problem(nil, "\(reported - 1000) more findings in the global index not listed\(harmless ? " (all of them harmless)" : "")",
                        harmless: harmless)
            }
        } catch {
            problem(nil, "read failed: \(error)")
        }
        // None missing, and each at its stream's position: the digests agree.
        for stream in streams where !stream.indexBroken && !stream.unknownPositions {
            let covered = stream.covered.count
            if stream.indexed.count < covered {
                problem(nil, "\(covered - stream.indexed.count) events of stream \"\(stream.name.prefix(80))\" have no entry")
            } else if stream.indexed != stream.covered {
                problem(nil, "the global index's positions of stream \"\(stream.name.prefix(80))\" (versions \(stream.base)..<\(stream.base + UInt64(stream.indexed.count))) differ from where the stream holds those events")
            }
        }
    }
}
