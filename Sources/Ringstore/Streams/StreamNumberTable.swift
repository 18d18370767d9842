/// Stream names numbered 0, 1, 2, … in order of registration, found by name
/// through an open-addressing hash table of numbers.
///
/// Why not `[String: UInt32]` next to the names: the dictionary stores every
/// name a second time (16 bytes a key, at most three quarters of its buckets
/// used), about 2.6 MB at 100,000 streams; this table holds 4 bytes a slot
/// (the number + 1; 0 is empty) and looks the name up in `names`, 1 MB at
/// 100,000 streams with at most half the slots used. Linear probing; nothing
/// is ever removed.
struct StreamNumberTable {
    private(set) var names: [String] = []
    private var slots: [UInt32] = []
    private var mask = 0

    var count: Int { names.count }

    func number(of name: String) -> UInt32? {
        guard !slots.isEmpty else { return nil }
        var slot = name.hashValue & mask
        while true {
            let stored = slots[slot]
            if stored == 0 { return nil }
            if names[Int(stored - 1)] == name { return stored - 1 }
            slot = (slot + 1) & mask
        }
    }

    func name(of number: UInt32) -> String? {
        Int(number) < names.count ? names[Int(number)] : nil
    }

    /// Adds `name` with the next number and returns it. (A name added twice,
    /// which only a damaged catalog could hold, is found under its first number.)
    mutating func append(_ name: String) -> UInt32 {
        precondition(names.count < Int(UInt32.max), "more than 2^32 - 1 streams")
        let number = UInt32(names.count)
        names.append(name)
        if names.count * 2 > slots.count { rebuild(slotCount: max(1024, slots.count * 2)) } else { insert(number) }
        return number
    }

    /// Keeps `name` as the copy of stream `number`'s name; its bytes must be the
    /// stored name's (so its hash, and its slot, are the same).
    mutating func share(_ name: String, as number: UInt32) {
        precondition(names[Int(number)].utf8.elementsEqual(name.utf8), "a different name for stream \(number)")
        names[Int(number)] = name
    }

    private mutating func insert(_ number: UInt32) {
        var slot = names[Int(number)].hashValue & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = number + 1
    }

    private mutating func rebuild(slotCount: Int) {
        slots = [UInt32](repeating: 0, count: slotCount)
        mask = slotCount - 1
        for number in names.indices { insert(UInt32(number)) }
    }
}
