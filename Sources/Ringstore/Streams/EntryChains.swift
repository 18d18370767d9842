import Synchronization

/// Reading chains of entries in the split segments' format (``SplitSegment``):
/// each stream's entries linked newest to oldest across numbered files. The
/// split segments (``SplitSegments``) and the bucket files (``StreamBuckets``)
/// both keep only each stream's newest entry in memory and read the rest by
/// following the links, so they share this walk and its kept listings; what
/// differs between them is only where a chain's files are found.
final class EntryChains: Sendable {
    typealias Link = SplitSegment.Link

    /// A stream's chain as last walked: each entry's first version, event count
    /// and link, oldest first, for the head it was walked from.
    ///
    /// Why: a chain links each entry to the one before, so finding an old
    /// version means walking back from the newest entry. `$all` over thousands
    /// of interleaved streams asks each stream for one event at a time, oldest
    /// first, and walked (and read) the whole rest of the chain for every event.
    /// Kept, the listing turns that into a binary search and one read. It is
    /// valid while the stream's head is the same entry: entries are only ever
    /// added at the head, and those below a stream's floor (moved, their file
    /// perhaps deleted) are never followed, since reads start at or above it.
    private struct ChainListing {
        var head: Link
        var next: UInt64
        /// Entries from the newest back to the first one starting at or below `coveredFrom`.
        var coveredFrom: UInt64
        /// With each entry's block length, so that reading it takes one `pread`.
        var entries: [(first: UInt64, count: UInt32, link: Link, length: UInt32)]
    }

    /// Listings by stream number, and how many entries they hold in all (bounded by ``listingBudget``).
    private let listings = Mutex<(byStream: [UInt32: ChainListing], entries: Int)>(([:], 0))
    /// At most this many listed entries (about 24 bytes each) are kept; past it, all are dropped.
    let listingBudget: Int

    /// How many bytes a chain walk reads at each entry: enough for a whole
    /// entry of a checkpoint's usual size, so that loading it takes no second `pread`.
    static let walkReadAhead = 4096

    init(listingBudget: Int = 1 << 18) {
        self.listingBudget = listingBudget
    }

    /// Stream `number`'s kept listing, if it still describes the chain from `head` down to `floor`.
    private func keptListing(of number: UInt32, head: Link, next: UInt64, from floor: UInt64) -> ChainListing? {
        guard let kept = listings.withLock({ $0.byStream[number] }),
              kept.head == head, kept.next == next, kept.coveredFrom <= floor else { return nil }
        return kept
    }

    /// Keeps `listing` for stream `number` (all listings are dropped once they pass ``listingBudget``).
    private func keep(_ listing: ChainListing, of number: UInt32) {
        listings.withLock { l in
            let replaced = l.byStream[number]?.entries.count ?? 0
            if l.entries - replaced + listing.entries.count > listingBudget {
                l.byStream.removeAll(keepingCapacity: true)
                l.entries = 0
            } else {
                l.entries -= replaced
            }
            l.byStream[number] = listing
            l.entries += listing.entries.count
        }
    }

    /// Stream `number`'s entries, in the chain whose newest entry is `head`
    /// (`next`: the version after it), holding versions at or after `floor`
    /// (those below are elsewhere) and, with `through`, starting at or before
    /// that version, oldest first. Only they are read: through the chain's kept
    /// listing (see ``ChainListing``) if there is one; otherwise the chain is
    /// walked back from its head to the first entry starting at or below
    /// `floor`, each entry with one `pread` that takes the whole entry when it
    /// is of the usual size (``walkReadAhead``), and the walk is kept as the listing.
    ///
    /// With `lastFile`, only entries in files up to it are read and returned;
    /// the walk passes the newer ones with a read of their envelope and block
    /// header (80 bytes). Why: the mover empties the oldest segment stream by
    /// stream, and read every entry of each stream's chain, in every segment,
    /// to move those of the oldest: with 100,000 streams, 4 KiB `pread`s took
    /// two-thirds of its time and it fell far behind the split.
    ///
    /// `file`: the file a link names (throwing, naming it, when it is missing).
    func entries(of number: UInt32, head: Link, next: UInt64, from floor: UInt64, through last: UInt64? = nil,
                 throughFile lastFile: UInt32 = .max, file: (UInt32) throws -> SplitSegment) throws -> [SplitSegment.Entry] {
        guard !head.isNone, next > floor else { return [] }
        if let kept = keptListing(of: number, head: head, next: next, from: floor) {
            return try read(kept.entries, of: number, through: last, from: floor, throughFile: lastFile, file: file)
        }
        var listed: [(first: UInt64, count: UInt32, link: Link, length: UInt32)] = []
        var wanted: [SplitSegment.Entry] = []
        var link = head
        while !link.isNone {
            let segment = try file(link.segment)
            let offset = UInt64(link.offset)
            // An entry past `lastFile` is only passed through: its envelope and
            // header (one small read) lead to the entries before it.
            let inRange = link.segment <= lastFile
            let (envelope, header, block) = inRange
                ? try segment.entryAhead(at: offset, readAhead: Self.walkReadAhead)
                : try { let (e, h) = try segment.envelopeAndHeader(at: offset); return (e, h, nil) }()
            guard envelope.stream == number else {
                throw segment.damaged(at: offset, "entry belongs to stream number \(envelope.stream), the chain of \(number) leads here")
            }
            listed.append((header.firstVersion, UInt32(header.count), link, UInt32(envelope.blockLength)))
            if inRange, header.firstVersion + UInt64(header.count) > floor, last.map({ header.firstVersion <= $0 }) ?? true {
                if let block {
                    wanted.append(SplitSegment.Entry(envelope: envelope, header: header, block: block, segment: link.segment,
                                                     path: segment.path.string, offset: offset, dictionary: segment.dictionary))
                } else {
                    wanted.append(try segment.entry(at: offset, blockLength: envelope.blockLength))
                }
            }
            if header.firstVersion <= floor { break }
            guard envelope.previous < link else {
                throw segment.damaged(at: offset, "entry links forward, to \(envelope.previous)")
            }
            link = envelope.previous
        }
        keep(ChainListing(head: head, next: next, coveredFrom: link.isNone ? 0 : floor, entries: listed.reversed()), of: number)
        return wanted.reversed()
    }

    /// Reads the entries of a kept listing (`chain`, oldest first) that hold
    /// versions at or after `floor`, start at or before `last` and lie in
    /// files up to `lastFile`.
    private func read(_ chain: [(first: UInt64, count: UInt32, link: Link, length: UInt32)], of number: UInt32,
                      through last: UInt64?, from floor: UInt64, throughFile lastFile: UInt32,
                      file: (UInt32) throws -> SplitSegment) throws -> [SplitSegment.Entry] {
        // The first entry ending above `floor` (entries are in version order).
        var low = 0, high = chain.count
        while low < high {
            let middle = (low + high) / 2
            if chain[middle].first + UInt64(chain[middle].count) > floor { high = middle } else { low = middle + 1 }
        }
        var result: [SplitSegment.Entry] = []
        for listed in chain[low...] {
            if let last, listed.first > last { break }
            if listed.link.segment > lastFile { break }  // links rise along a chain
            let segment = try file(listed.link.segment)
            let entry = try segment.entry(at: UInt64(listed.link.offset), blockLength: Int(listed.length))
            guard entry.envelope.stream == number, entry.header.firstVersion == listed.first else {
                throw segment.damaged(at: UInt64(listed.link.offset), "entry belongs to stream number \(entry.envelope.stream) from version \(entry.header.firstVersion), the chain of \(number) leads here")
            }
            result.append(entry)
        }
        return result
    }
}
