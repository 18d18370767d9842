import SystemPackage

/// The bucket files' part of a verification (``StreamBuckets``): each stream's
/// chain is followed as opening follows it, its blocks checked and its versions
/// past the stream's file joined onto the stream, before the split segments continue it.
extension StoreVerifier {
    /// A finding in a bucket file whose weight is known only once every stream's
    /// stored versions are (see ``settleBucketFindings(_:streams:into:)``).
    struct PendingBucketFinding {
        /// Index of the finding in the problems.
        var problem: Int
        /// An entry on no chain: its stream (by catalog number) and versions.
        /// nil: damaged bytes, which name no stream.
        var entry: (stream: Int, versions: Range<UInt64>)?
    }

    /// The names of the bucket files (`streams/buckets/*.seg`), in the order opening
    /// walks them: by number, so each bucket's generations come in order.
    func bucketFileNames() -> [String] {
        ((try? StorageDirectory.entries(of: bucketFolder)) ?? [])
            .compactMap { name in SplitSegment.number(inFileName: name).map { (number: $0, name: name) } }
            .sorted { $0.number < $1.number }.map(\.name)
    }

    var bucketFolder: FilePath { directory.appending(StreamNaming.folder).appending(StreamBuckets.folderName) }

    /// Checks the bucket heads' snapshot (``BucketHeadsSnapshot``), if there is
    /// one: intact, and every file it names there and at least as long as it
    /// says, each head's newest entry within its file's end. (Whether the heads
    /// are the chains' is left to the tests: a promoted stream's chain is
    /// forgotten in the snapshot but still in the files.)
    func verifyBucketSnapshot(files names: [String], into problems: inout [MaintenanceProblem], inventory: inout StoreInventory) {
        let path = bucketFolder.appending(BucketHeadsSnapshot.fileName)
        guard StorageDirectory.exists(path) else { return }
        let relative = "\(StreamNaming.folder)/\(StreamBuckets.folderName)/\(BucketHeadsSnapshot.fileName)"
        inventory.bucketSnapshotBytes = fileSize(path)
        guard let bytes = try? StorageFile.readWhole(path), let snapshot = BucketHeadsSnapshot.decode(bytes) else {
            problems.append(MaintenanceProblem(file: relative, offset: 0, what: "bucket heads snapshot is damaged (opening walks the bucket files whole instead)"))
            return
        }
        let sizes = Dictionary(uniqueKeysWithValues: names.compactMap { name in
            SplitSegment.number(inFileName: name).map { ($0, fileSize(bucketFolder.appending(name))) }
        })
        let ends = Dictionary(uniqueKeysWithValues: snapshot.files.map { ($0.number, $0.end) })
        for file in snapshot.files where (sizes[file.number] ?? 0) < file.end {
            problems.append(MaintenanceProblem(file: relative, offset: nil,
                                               what: "bucket heads snapshot says \(SplitSegment.fileName(of: file.number)) has \(file.end) bytes, but it has \(sizes[file.number] ?? 0) (opening walks the bucket files whole instead)",
                                               harmless: true))
            return
        }
        for (stream, head) in snapshot.heads.enumerated() where !head.link.isNone {
            guard let end = ends[head.link.segment], UInt64(head.link.offset) < end else {
                problems.append(MaintenanceProblem(file: relative, offset: nil,
                                                   what: "bucket heads snapshot points stream number \(stream) past what it describes (\(SplitSegment.fileName(of: head.link.segment)) at \(head.link.offset))"))
                return
            }
        }
    }

    /// Walks every bucket file: each entry whole and checked; an entry that continues
    /// its stream's chain (the next version, chained to the chain's newest entry, as
    /// ``StreamBuckets`` takes it at open) joins the stream where it holds versions
    /// past the stream's file. Entries on no chain and damaged bytes are what a write
    /// cut by a crash leaves as well as damage: they are returned, to be weighed once
    /// the segments and the global index have shown whether any stream misses a version.
    func verifyBuckets(_ names: [String], streams: inout [StreamTally], checker: inout BlockChecker,
                       checkpoint: UInt64, replayFrom: UInt64,
                       into problems: inout [MaintenanceProblem], inventory: inout StoreInventory,
                       bytesRead: inout UInt64, progress: (Int) -> Void) -> [PendingBucketFinding] {
        var pending: [PendingBucketFinding] = []
        let folder = bucketFolder
        verifyBucketSnapshot(files: names, into: &problems, inventory: &inventory)
        for (i, name) in names.enumerated() {
            progress(i)
            let relative = "\(StreamNaming.folder)/\(StreamBuckets.folderName)/\(name)"
            func problem(_ offset: UInt64?, _ what: String, harmless: Bool = false, stream: String? = nil) {
                problems.append(MaintenanceProblem(file: relative, offset: offset, what: what, stream: stream, harmless: harmless))
            }
            guard let number = SplitSegment.number(inFileName: name) else { continue }
            guard StreamBuckets.bucketAndGeneration(of: number) != nil else {
                problem(nil, "a split segment's number in the bucket folder: no bucket file")
                continue
            }
            do {
                guard let file = try SplitSegment.open(number: number, in: folder) else {
                    problem(0, "bucket file has no header (never written; opening removes it)", harmless: true)
                    continue
                }
                let size = try file.file.size()
                if !file.damagedDictionaryCopies.isEmpty && size <= file.entriesStart {
                    problem(file.damagedDictionaryCopies[0], "bucket file has no entry and a damaged dictionary (its creation was cut; opening removes it)",
                            harmless: replayFrom != .max)
                    continue
                }
                inventory.bucketFiles += 1
                inventory.bucketFileBytes += size
                bytesRead += size
                for (offset, what) in Self.dictionaryFindings(of: file) { problem(offset, what) }
                let end = try file.walk(checkingPayloads: true, chunkBytes: 4 << 20) { visit, block, _ in
                    switch visit {
                    case .entry(let offset, let envelope, let header, let intact):
                        let bytes = UInt64(SplitSegment.envelopeSize + header.totalLength)
                        let index = Int(envelope.stream)
                        guard index < streams.count else {
                            problem(offset, "entry names stream number \(envelope.stream), which the catalog does not have")
                            return true
                        }
                        // Read in place: a copy of the row would retain its name for every entry.
                        let versions = header.firstVersion..<(header.firstVersion + UInt64(header.count))
                        guard intact, header.count > 0, header.firstVersion == streams[index].bucketNext,
                              envelope.previous == streams[index].bucketLink else {
                            inventory.bucketGarbageEntries += 1
                            inventory.bucketGarbageBytes += bytes
                            let why = intact ? "" : " and its payload checksum does not match"
                            pending.append(PendingBucketFinding(problem: problems.count, entry: (index, versions)))
                            problem(offset, "entry of stream \"\(streams[index].name.prefix(80))\" (versions \(versions.lowerBound)..<\(versions.upperBound)) continues no chain\(why)",
                                    stream: streams[index].name)
                            return true
                        }
                        streams[index].bucketLink = SplitSegment.Link(segment: number, offset: UInt32(offset))
                        streams[index].bucketNext = versions.upperBound
                        let stored = UnsafeRawBufferPointer(rebasing: block[StreamBlock.headerSize...])
                        guard versions.upperBound > streams[index].next else {
                            // Below the end of the stream's own file: a promoted stream's old chain.
                            inventory.bucketGarbageEntries += 1
                            inventory.bucketGarbageBytes += bytes
                            let name = streams[index].name
                            _ = checkOnly(header: header, stored: stored, dictionary: file.dictionary, checker: &checker) {
                                problem(offset, $0, stream: name)
                            }
                            return true
                        }
                        let before = streams[index].next
                        joinEntry(offset: offset, header: header, stored: stored, blockBytes: bytes, dictionary: file.dictionary,
                                  stream: &streams[index], checker: &checker, checkpoint: checkpoint, inventory: &inventory,
                                  bucket: true, problem: { problem(offset, $0, stream: $1) })
                        inventory.bucketEntries += 1
                        inventory.bucketEvents += Int(streams[index].next - min(before, streams[index].next))
                    case .damaged(let offset, let next):
                        inventory.bucketGarbageBytes += next - offset
                        pending.append(PendingBucketFinding(problem: problems.count, entry: nil))
                        problem(offset, "\(next - offset) bytes are no whole entry")
                    }
                    return true
                }
                if end < size {
                    // Opening cuts it. A clean close leaves none: there it is damage.
                    problem(end, "\(size - end) bytes at the end are no whole entry (a torn write)", harmless: replayFrom != .max)
                }
            } catch {
                problem(nil, "\(error)")
            }
        }
        return pending
    }

    /// Weighs the bucket files' entries on no chain and damaged bytes, once every
    /// stream's stored versions are known. A write cut by a crash leaves such
    /// bytes for good (opening cuts only a torn tail, and the mover writes the
    /// versions again from the segments); they are harmless while nothing is
    /// missing: an entry on no chain whose versions its stream holds anyway, and
    /// damaged bytes in a store where no stream misses a version. Otherwise they
    /// are the likely cause of what is missing, and problems.
    ///
    /// `unclean`: the store was not closed cleanly. A sweep also moves a stream's
    /// entries from segments newer than the checkpoint, so an entry a cut tore may
    /// hold versions that only the journal, from the checkpoint, supplies again at
    /// open; an entry on no chain is harmless there (a version really lost before
    /// the checkpoint is one the global index names and no file holds).
    func settleBucketFindings(_ pending: [PendingBucketFinding], streams: [StreamTally], unclean: Bool,
                              into problems: inout [MaintenanceProblem]) {
        guard !pending.isEmpty else { return }
        for finding in pending {
            guard let entry = finding.entry else { continue }
            let stream = streams[entry.stream]
            if stream.base <= entry.versions.lowerBound, stream.next >= entry.versions.upperBound {
                problems[finding.problem].harmless = true
                problems[finding.problem].what += " (the stream holds these versions elsewhere: bytes a crash left, which compaction drops)"
            } else if unclean {
                problems[finding.problem].harmless = true
                problems[finding.problem].what += " (the store was not closed cleanly: opening replays the journal from the checkpoint, which holds what the stream's files do not)"
            }
        }
        let damaged = Set(pending.filter { $0.entry == nil }.map(\.problem))
        let missing = problems.indices.contains { !damaged.contains($0) && !problems[$0].harmless }
        for index in damaged.sorted() {
            if missing {
                problems[index].what += " (some version is missing from the store: this may be where it was)"
            } else {
                problems[index].harmless = true
                problems[index].what += " (no stream misses a version: bytes a crash left, which compaction drops)"
            }
        }
    }
}
