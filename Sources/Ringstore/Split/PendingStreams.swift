/// One stream's records scanned but not yet written, as ring positions, and
/// their size in a block.
struct PendingStream {
    /// The stream's catalog number.
    var number: UInt32
    /// The shared copy of its name (see `Splitter.catalogued`).
    var name: String
    var positions = PendingPositions()
    var rawBytes = 0
}

/// One pending stream's ring positions, in order: the first held inline, the
/// others in an array allocated only for a second one.
///
/// Why: with many streams most have one record pending at a checkpoint (at
/// 100,000 streams and a 64 MiB journal, a checkpoint covers about 110,000
/// records), and an array per stream cost a heap block of 48 bytes each, 4.6
/// MiB of the peak; a stream with one record now costs nothing beyond its
/// entry in the list.
struct PendingPositions: RandomAccessCollection {
    /// `.max`: none.
    private var head: UInt64 = .max
    private var rest: [UInt64] = []

    var startIndex: Int { 0 }
    var endIndex: Int { head == .max ? 0 : 1 + rest.count }

    subscript(index: Int) -> UInt64 {
        precondition(index >= 0 && index < endIndex, "pending position out of range")
        return index == 0 ? head : rest[index - 1]
    }

    /// Appends `positions`; the array gets room for `capacity` positions in
    /// all (the inline one included) when it first holds any.
    mutating func append(contentsOf positions: some Sequence<UInt64>, reserving capacity: Int = 1) {
        var iterator = positions.makeIterator()
        if head == .max {
            guard let first = iterator.next() else { return }
            precondition(first != .max, "a ring position is below UInt64.max")
            head = first
        }
        while let position = iterator.next() {
            if capacity > 2 && rest.isEmpty { rest.reserveCapacity(capacity - 1) }
            rest.append(position)
        }
    }
}

/// The splitter's scanned records not yet written, by stream number (see
/// `Splitter.Pending` for why they wait).
///
/// Why by number: every scanned record is filed here, so with one-event
/// appends this is one lookup per event. Keyed by stream name it was a SipHash
/// of the name per lookup (and several lookups per record). Catalog numbers
/// are dense (0, 1, 2, … in order of first split), so a table by number is an
/// array of indices into the list of pending streams: no hashing at all, 4
/// bytes per stream the splitter has seen.
///
/// Streams are kept in the order they first got records since the last write
/// (a removal moves the last stream into the gap).
struct PendingStreams {
    /// The pending streams.
    private(set) var list: [PendingStream] = []
    /// By stream number: its index in `list`, or -1.
    private var slots: [Int32] = []
    /// Room for a stream's positions once it has two: what the streams written
    /// since the list was last empty typically held (see ``CapacityHint``).
    private(set) var positionCapacity = CapacityHint(limit: 32)

    var count: Int { list.count }
    var isEmpty: Bool { list.isEmpty }

    subscript(number: UInt32) -> PendingStream? {
        guard let index = index(of: number) else { return nil }
        return list[index]
    }

    private func index(of number: UInt32) -> Int? {
        let n = Int(number)
        guard n < slots.count, slots[n] >= 0 else { return nil }
        return Int(slots[n])
    }

    /// Files records of stream `number` (named `name`) at `positions`, holding
    /// `rawBytes` in a block; returns true if they make the stream reach
    /// `fullBytes`.
    mutating func add(number: UInt32, name: String, positions: some Sequence<UInt64>, rawBytes: Int, fullBytes: Int) -> Bool {
        let index: Int
        if let existing = self.index(of: number) {
            index = existing
        } else {
            let n = Int(number)
            if n >= slots.count { slots.append(contentsOf: repeatElement(-1, count: max(n + 1 - slots.count, slots.count / 2))) }
            index = list.count
            slots[n] = Int32(index)
            list.append(PendingStream(number: number, name: name))
        }
        let before = list[index].rawBytes
        list[index].positions.append(contentsOf: positions, reserving: positionCapacity.capacity)
        list[index].rawBytes += rawBytes
        return list[index].rawBytes >= fullBytes && before < fullBytes
    }

    /// Forgets stream `number`'s pending records (written, or about to be).
    mutating func remove(_ number: UInt32) {
        guard let index = index(of: number) else { return }
        positionCapacity.note(length: list[index].positions.count)
        slots[Int(number)] = -1
        let last = list.count - 1
        if index != last {
            list.swapAt(index, last)
            slots[Int(list[index].number)] = Int32(index)
        }
        list.removeLast()
        if list.isEmpty {  // a checkpoint's writing is done
            positionCapacity.update()
            if list.capacity > Self.keptCapacity { list = [] }
        }
    }

    /// Room for this many streams is kept in the emptied list; a larger list is
    /// let go of. Why: after an ingest over 100,000 streams the list kept 6.6 MB
    /// for good, and growing it again at the next checkpoint costs far less
    /// than the checkpoint's writing itself.
    static let keptCapacity = 4096
}
