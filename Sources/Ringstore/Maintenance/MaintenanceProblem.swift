/// One finding of ``StoreVerifier``: which file, where in it, what is wrong.
package struct MaintenanceProblem: Sendable, Hashable, CustomStringConvertible {
    /// The file's path relative to the store folder.
    package var file: String
    /// Byte offset in the file, when the finding has one.
    package var offset: UInt64?
    package var what: String
    /// The stream the bytes belong to, when known (used by `compact --skip-damaged`).
    package var stream: String?
    /// True for bytes that hold nothing a reader needs (a leftover of an earlier
    /// lap of the ring, a tail recovery will cut): reported, but the store is clean.
    package var harmless: Bool

    package init(file: String, offset: UInt64?, what: String, stream: String? = nil, harmless: Bool = false) {
        self.file = file
        self.offset = offset
        self.what = what
        self.stream = stream
        self.harmless = harmless
    }

    /// `file, offset, what` on one line (the offset left out when there is none).
    package var description: String {
        "\(file), \(offset.map { "offset \($0)" } ?? "-"), \(harmless ? "harmless: " : "")\(what)"
    }
}
