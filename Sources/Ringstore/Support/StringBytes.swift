import Glibc

extension String {
    /// Whether `other` has exactly the same UTF-8 bytes.
    ///
    /// Why not `==`: it compares canonical equivalence, and a stream's bytes
    /// choose its file. Why not `utf8.elementsEqual`: it walks both views a byte
    /// at a time, about 45 instructions a byte, and the splitter compares a name
    /// for every stream it files. Native strings have contiguous UTF-8, so this
    /// is one `memcmp`.
    func hasSameUTF8(as other: String) -> Bool {
        let count = utf8.count
        guard count == other.utf8.count else { return false }
        guard count > 0 else { return true }
        let same = utf8.withContiguousStorageIfAvailable { mine in
            other.utf8.withContiguousStorageIfAvailable { theirs in
                memcmp(mine.baseAddress!, theirs.baseAddress!, count) == 0
            }
        }
        return (same ?? nil) ?? utf8.elementsEqual(other.utf8)
    }
}
