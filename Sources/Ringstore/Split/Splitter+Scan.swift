#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Step 1 (see ``Splitter``): scanning the journal, filing records under their
/// streams and appending their global-index entries.
extension Splitter {
    /// A stream's pending records are written as soon as they make a block this large.
    static let eagerBlockBytes = 64 << 10

    /// Scans the journal from the scan cursor towards the acknowledged cursor (up
    /// to `roundBytes`): files each event record under its stream, appends the
    /// global-index entries (one write), and writes the streams that now have a
    /// block's worth. Returns whether anything was scanned.
    func scan(_ pending: inout Pending) throws -> Bool {
        let start = pending.scanned
        let end = testing.scanEnd(acknowledged)
        guard start < end else { return false }
        let ring = journal.ring
        var position = start
        // Nothing is filed under `pending` until the round's global-index entries are
        // written: a round that fails is scanned again whole, and must not file its
        // records twice.
        //
        // Records come in runs of one stream (an append's events are contiguous): a
        // run's name is decoded, and its catalog number looked up, once, not per
        // record; a record joins the run when its name has the run's bytes. A run
        // of a stream in `pending.names` takes its number and name from there,
        // found by the record's bytes (no name decoded, no catalog lookup).
        //
        // The round's lists are the ones the last round used, emptied (see `ScanLists`).
        var lists = ScanLists()
        swap(&lists, &pending.lists)
        defer {
            lists.empty()
            swap(&lists, &pending.lists)
        }
        while position < end && position - start < roundBytes {
            let toEnd = ring.bytesToEnd(from: position)
            if toEnd < UInt64(JournalRecord.paddingSize) {
                position += toEnd
                continue
            }
            let here = position
            let length = try ring.withMappedBytes(physical: ring.physical(position), count: Int(toEnd)) { bytes throws(RingstoreError) -> UInt64? in
                switch JournalRecord.inspect(bytes, expectedPosition: here) {
                case .event(let header):
                    if let name = lists.runNames.last, JournalRecord.streamName(bytes, header, is: name) {
                        lists.runEnds[lists.runEnds.count - 1] += 1
                    } else if let known = pending.names.lookup(JournalRecord.streamNameBytes(bytes, header)) {
                        lists.runNames.append(known.name)
                        lists.runNumbers.append(known.number)
                        lists.runEnds.append(lists.records.count + 1)
                    } else {
                        lists.runNames.append(JournalRecord.streamName(bytes, header))
                        lists.runNumbers.append(nil)
                        lists.runEnds.append(lists.records.count + 1)
                    }
                    let size = StreamBlock.entryHeaderSize + header.typeCount + header.metadataCount + header.dataCount
                    lists.records.append((header.position, header.version, size))
                    return UInt64(header.length)
                case .padding:
                    return nil  // padding fills the rest of the lap
                case .invalid(let reason):
                    throw damagedRecord(at: here, reason)
                }
            }
            position += length ?? toEnd
        }
        // Catalog numbers once per run, and one write for the global index.
        let streams = catalogued(lists.runNames, numbers: lists.runNumbers, cache: &pending.names)
        var indexEntries: [GlobalIndex.Entry] = []
        indexEntries.reserveCapacity(lists.records.count)
        var runStart = 0
        for (stream, runEnd) in zip(streams, lists.runEnds) {
            for record in lists.records[runStart..<runEnd] {
                indexEntries.append(.init(position: record.position, version: record.version, stream: stream.number))
            }
            runStart = runEnd
        }
        try catalog.write()
        try globalIndex.append(indexEntries)
        var full: [UInt32] = []
        runStart = 0
        for (stream, runEnd) in zip(streams, lists.runEnds) {
            // Filed under the shared copy of the name (see `catalogued`): the pending
            // table, the dirty set and the open-file cache's memo then hold no copy of their own.
            let run = lists.records[runStart..<runEnd]
            if pending.streams.add(number: stream.number, name: stream.name, positions: run.lazy.map(\.position),
                                   rawBytes: run.reduce(0) { $0 + $1.size }, fullBytes: Self.eagerBlockBytes) {
                full.append(stream.number)
            }
            runStart = runEnd
        }
        pending.scanned = position
        splitEvents.add(UInt64(lists.records.count), ordering: .relaxed)
        for stream in full { try write(stream, &pending) }
        // The checkpoint reads the pending records again; until then their pages need not stay mapped.
        pending.mappedPages.release(before: position, in: ring)
        return true
    }

    /// The catalog number of each stream in `names` (registering new ones, in
    /// order of first appearance) and the copy of its name to keep, in the order
    /// of `names`.
    ///
    /// Why the copy matters: a name longer than 15 bytes is a heap object of its
    /// own, and a name decoded from the journal is a new one each time, so each
    /// table keyed by stream would otherwise hold its own copy (80 bytes and more
    /// each, at 100,000 streams megabytes). The catalog keeps one copy per stream,
    /// the writer's index key (which exists, since the record was appended): a
    /// new stream's is registered with it, and a name read from the catalog file
    /// at open is replaced by it the first time the stream is split again. A copy
    /// is shared only if its bytes are identical, since a name's bytes choose its file.
    ///
    /// A stream registered and shared already (every stream after its first split
    /// this session) costs one catalog lookup the first time and is then found in
    /// `cache` by the record's bytes (a non-nil `numbers[i]`: `names[i]` is then
    /// the shared copy already); only the others go through the writer's lock,
    /// once per round.
    private func catalogued(_ names: [String], numbers: [UInt32?],
                            cache: inout StreamNameCache) -> [(number: UInt32, name: String)] {
        var result: [(number: UInt32, name: String)] = []
        result.reserveCapacity(names.count)
        var slow: [Int] = []
        for (i, name) in names.enumerated() {
            if let number = numbers[i] {
                result.append((number, name))
            } else if let known = catalog.entry(of: name), !known.shareable, known.name.hasSameUTF8(as: name) {
                result.append((known.number, known.name))
                cache.insert(number: known.number, name: known.name)
            } else {
                result.append((0, name))  // numbered below
                slow.append(i)
            }
        }
        guard !slow.isEmpty else { return result }
        var first: [String: Int] = [:]  // where each of these names first appears
        var new: [String] = []
        var loaded: [(number: UInt32, name: String)] = []
        for i in slow where first[names[i]] == nil {
            let name = names[i]
            first[name] = i
            if let known = catalog.entry(of: name), known.name.hasSameUTF8(as: name) {
                result[i] = (known.number, known.name)
                loaded.append((known.number, known.name))  // read from the file: shareable
            } else {
                new.append(name)
            }
        }
        // Once per new stream, and once per stream read from the catalog file: not a
        // lock taken on every round.
        let keys = journal.sharedNames(of: new + loaded.map(\.name))
        let newKeys = zip(new, keys).map { name, key in key ?? name }
        let loadedKeys = Array(keys[new.count...])
        var resolved: [String: (number: UInt32, name: String)] = [:]
        for name in newKeys { resolved[name] = (catalog.register(name), name) }
        for (entry, key) in zip(loaded, loadedKeys) {
            catalog.share(key ?? entry.name, as: entry.number)  // marks it done even without a key
            if let key { resolved[key] = (entry.number, key) }
        }
        for i in slow { result[i] = resolved[names[i]] ?? result[first[names[i]]!] }
        return result
    }

    func damagedRecord(at position: UInt64, _ reason: String) -> RingstoreError {
        let physical = journal.ring.physical(position)
        return RingstoreError(.corruptData, "journal record at position \(position), below the acknowledged cursor, is damaged: \(reason)",
                              path: journal.ring.file.path.string, offset: RingFile.headerAreaSize + physical)
    }
}
