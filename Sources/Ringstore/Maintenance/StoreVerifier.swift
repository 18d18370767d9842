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
/// index (``StreamFileVerifier``), the split segments, and the global index
/// against the stream files and segments (each entry names a stored event at
/// its position, in position order, and every stored event has one).
///
/// Read-only: it never opens the store (opening truncates damaged tails), only
/// reads its files. The caller holds the store's lock.
struct StoreVerifier {
    let directory: FilePath
    /// Called now and then with (files done, files in all).
    var progress: (Int, Int) -> Void = { _, _ in }

    func verify() -> VerifyReport {
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

        var streams = verifyCatalog(into: &problems, inventory: &inventory, bytesRead: &report.bytesRead)
        var numbers: [String: Int] = [:]
        numbers.reserveCapacity(streams.count)
        for (i, stream) in streams.enumerated() { numbers[stream.name] = i }

        // Stream files.
        let files = streamFiles(into: &problems)
        let segmentFiles = (try? StorageDirectory.entries(of: directory.appending("split")))?
            .filter { SplitSegment.number(inFileName: $0) != nil }.sorted() ?? []
        let totalFiles = files.count + segmentFiles.count
        var checker = BlockChecker()
        let fileVerifier = StreamFileVerifier(directory: directory)
        for (i, relative) in files.enumerated() {
            if i % 256 == 0 { progress(i, totalFiles) }
            var outcome = fileVerifier.verify(relative: relative, replayFrom: replayFrom, checker: &checker,
                                              bytesRead: &report.bytesRead, into: &problems)
            inventory.streamFiles += 1
            inventory.streamFileBytes += outcome.bytes
            inventory.blocks += outcome.blocks
            inventory.storedBytes += outcome.storedBytes
            if outcome.hasIndex { inventory.indexFiles += 1; inventory.indexFileBytes += outcome.indexBytes }
            guard let name = outcome.name else { continue }
            guard let number = numbers[name] else {
                problems.append(MaintenanceProblem(file: relative, offset: 16, what: "stream \"\(name.prefix(80))\" has a file but no catalog entry", stream: name))
                continue
            }
            if streams[number].hasFile {
                problems.append(MaintenanceProblem(file: relative, offset: 16, what: "a second file for stream \"\(name.prefix(80))\"", stream: name))
                continue
            }
            streams[number].hasFile = true
            streams[number].base = outcome.base
            streams[number].fileEvents = outcome.positions.count
            streams[number].fileBlocks = outcome.blocks
            streams[number].fileBytes = outcome.bytes + outcome.indexBytes
            swap(&streams[number].positions, &outcome.positions)
        }

        // Split segments: entries continue their streams' files.
        verifySegments(segmentFiles, streams: &streams, checker: &checker, replayFrom: replayFrom, into: &problems,
                       inventory: &inventory, bytesRead: &report.bytesRead) { progress(files.count + $0, totalFiles) }
        inventory.rawBytes = checker.rawBytes

        verifyGlobalIndex(streams: &streams, checkpoint: checkpoint, replayFrom: replayFrom, into: &problems,
                          inventory: &inventory, bytesRead: &report.bytesRead)
        for stream in streams where stream.positions.count > 0 {
            inventory.events += stream.positions.count
            inventory.streams.append((stream.name, stream.positions.count, stream.fileBlocks + stream.segmentEntries,
                                      stream.fileBytes + stream.segmentBytes))
        }
        progress(totalFiles, totalFiles)
        report.findings = problems
        report.inventory = inventory
        report.seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18
            + Double((ContinuousClock.now - started).components.seconds)
        return report
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
    func verifyCatalog(into problems: inout [MaintenanceProblem], inventory: inout StoreInventory,
                               bytesRead: inout UInt64) -> [StreamEvents] {
        var streams: [StreamEvents] = []
        let fileName = StreamCatalog.fileName
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
                streams.append(StreamEvents(name: String(decoding: UnsafeRawBufferPointer(rebasing: body[4...]), as: UTF8.self)))
                offset += UInt64(8 + length)
            }
        } catch {
            problems.append(MaintenanceProblem(file: fileName, offset: nil, what: "read failed: \(error)"))
        }
        inventory.catalogNames = streams.count
        return streams
    }

    /// Every segment's entries: envelope, block and payload intact, the stream number
    /// known; their events extend their streams' files (entries below a file's end are
    /// copies already moved, and must match what the file holds).
    private func verifySegments(_ names: [String], streams: inout [StreamEvents], checker: inout BlockChecker, replayFrom: UInt64,
                                into problems: inout [MaintenanceProblem], inventory: inout StoreInventory,
                                bytesRead: inout UInt64, progress: (Int) -> Void) {
        var pending: [Int: [(firstVersion: UInt64, positions: [UInt64], file: String, offset: UInt64, bytes: UInt64)]] = [:]
        for (i, name) in names.enumerated() {
            progress(i)
            let relative = "split/\(name)"
            func problem(_ offset: UInt64?, _ what: String, harmless: Bool = false) {
                problems.append(MaintenanceProblem(file: relative, offset: offset, what: what, harmless: harmless))
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
                var header = [UInt8](repeating: 0, count: SplitSegment.headerSize)
                _ = try header.withUnsafeMutableBytes { try segment.file.read(into: $0, at: 0) }
                if header[20..<24].contains(where: { $0 != 0 }) { problem(20, "reserved header bytes are not zero") }
                var entries: [(UInt64, SplitSegment.Envelope, StreamBlock.Header)] = []
                let end = try segment.walk { visit in
                    switch visit {
                    case .entry(let offset, let envelope, let header, let intact):
                        if intact { entries.append((offset, envelope, header)) } else { problem(offset, "entry's block payload checksum mismatch") }
                    case .damaged(let offset, let next):
                        problem(offset, "\(next - offset) bytes are no whole entry")
                    }
                    return true
                }
                if end < size { problem(end, "\(size - end) bytes at the end are no whole entry (a torn write)", harmless: replayFrom != .max) }
                var reader = try SequentialReader(file: segment.file)
                for (offset, envelope, header) in entries {
                    inventory.segmentEntries += 1
                    guard Int(envelope.stream) < streams.count else {
                        problem(offset, "entry names stream number \(envelope.stream), which the catalog does not have")
                        continue
                    }
                    // The walk just read these bytes: take them from the same window, not one pread each.
                    var positions: [UInt64] = []
                    let blockStart = offset + UInt64(SplitSegment.envelopeSize + StreamBlock.headerSize)
                    guard let stored = try reader.bytes(at: blockStart, count: header.storedLength) else {
                        problem(offset, "entry runs past the end of the file")
                        continue
                    }
                    let why = checker.check(header: header, stored: stored, positions: &positions)
                    if let why { problem(offset, why); continue }
                    inventory.storedBytes += UInt64(header.storedLength)
                    pending[Int(envelope.stream), default: []].append((header.firstVersion, positions, relative, offset,
                                                                       UInt64(SplitSegment.envelopeSize + header.totalLength)))
                }
            } catch {
                problem(nil, "\(error)")
            }
        }
        // Join each stream's entries onto its file, oldest version first.
        for (number, list) in pending {
            streams[number].segmentEntries = list.count
            streams[number].segmentBytes = list.reduce(0) { $0 + $1.bytes }
            for entry in list.sorted(by: { $0.firstVersion < $1.firstVersion }) {
                var stream = streams[number]
                if stream.positions.isEmpty && !stream.hasFile { stream.base = entry.firstVersion }
                if entry.firstVersion > stream.nextVersion {
                    problems.append(MaintenanceProblem(file: entry.file, offset: entry.offset,
                                                       what: "entry of stream \"\(stream.name.prefix(80))\" starts at version \(entry.firstVersion) but its file and earlier entries end at \(stream.nextVersion)",
                                                       stream: stream.name))
                    continue
                }
                for (i, position) in entry.positions.enumerated() {
                    let version = entry.firstVersion + UInt64(i)
                    if version < stream.base { continue }
                    if version < stream.nextVersion {
                        let known = stream.positions[Int(version - stream.base)]
                        if known != position && known != .max {
                            problems.append(MaintenanceProblem(file: entry.file, offset: entry.offset,
                                                               what: "entry of stream \"\(stream.name.prefix(80))\" has version \(version) at journal position \(position), the stream file at \(known)",
                                                               stream: stream.name))
                            break
                        }
                    } else {
                        stream.positions.append(position)
                    }
                }
                streams[number] = stream
            }
        }
    }

    /// The global index: every entry intact, positions rising, naming a stored event
    /// at its position; afterwards every stored event before the checkpoint has one.
    private func verifyGlobalIndex(streams: inout [StreamEvents], checkpoint: UInt64, replayFrom: UInt64,
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
            let perChunk = (8 << 20) / entrySize
            var chunk = [UInt8](repeating: 0, count: perChunk * entrySize)
            var lastPosition: UInt64? = nil
            var reported = 0
            func report(_ offset: UInt64, _ what: String, harmless: Bool) {
                // A damaged region would repeat the same finding for every entry: cap them.
                if reported < 1000 { problem(offset, what, harmless: harmless) }
                reported += 1
            }
            var index = 0
            while index < total {
                let count = min(perChunk, total - index)
                let got = try chunk.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(count * entrySize)]), at: UInt64(index * entrySize)) }
                bytesRead += UInt64(got)
                for i in 0..<count {
                    let offset = UInt64((index + i) * entrySize)
                    let start = i * entrySize
                    guard let entry = GlobalIndex.decode(chunk[start..<(start + entrySize)]) else {
                        report(offset, "entry \(index + i): checksum mismatch", harmless: false)
                        continue
                    }
                    // Unclean store: entries from the checkpoint on are dropped at open.
                    let harmless = entry.position >= replayFrom
                    if let last = lastPosition, entry.position <= last {
                        report(offset, "entry \(index + i): position \(entry.position) is not after the previous entry's \(last)", harmless: harmless)
                    }
                    lastPosition = entry.position
                    guard Int(entry.stream) < streams.count else {
                        report(offset, "entry \(index + i) names stream number \(entry.stream), which the catalog does not have", harmless: harmless)
                        continue
                    }
                    let number = Int(entry.stream)
                    // Read in place: copying the stream's record would retain its array per entry.
                    let base = streams[number].base
                    let next = streams[number].nextVersion
                    guard entry.version >= base, entry.version < next else {
                        report(offset, "entry \(index + i) names version \(entry.version) of stream \"\(streams[number].name.prefix(80))\", which is not stored (stored: \(base)..<\(next))",
                               harmless: harmless)
                        continue
                    }
                    let stored = streams[number].positions[Int(entry.version - base)]
                    if stored != entry.position && stored != .max {
                        report(offset, "entry \(index + i) puts version \(entry.version) of stream \"\(streams[number].name.prefix(80))\" at position \(entry.position), the stream holds it at \(stored)",
                               harmless: harmless)
                        continue
                    }
                    streams[number].indexed += 1
                }
                index += count
            }
            if reported > 1000 { problem(nil, "\(reported - 1000) more findings in the global index not listed") }
        } catch {
            problem(nil, "read failed: \(error)")
        }
        // None missing: every stored event the checkpoint covers has its entry.
        for stream in streams where stream.indexed < stream.positions.count {
            let missing = stream.positions.enumerated().filter { $0.element < checkpoint && $0.element != .max }.count - stream.indexed
            if missing > 0 {
                problem(nil, "\(missing) events of stream \"\(stream.name.prefix(80))\" have no entry")
            }
        }
    }
}
