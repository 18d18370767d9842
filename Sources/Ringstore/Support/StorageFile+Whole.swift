import SystemPackage

/// Small files written and read whole: the store's dictionary, the segment
/// summaries, the bucket heads' snapshot.
extension StorageFile {
    /// Creates `path` (which must not exist) holding `bytes`; with `sync`, they
    /// are durable when this returns (its name is not: the caller syncs the folder).
    static func create(_ path: FilePath, holding bytes: [UInt8], sync: Bool) throws {
        let file = try open(path, create: true, exclusive: true)
        defer { file.close() }
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
        if sync { try file.syncData() }
    }

    /// Replaces `path` with a file holding `bytes`, durably. The order, and
    /// what a cut between two steps leaves:
    /// 1. `unfinished` (in the same folder) is written and synced — a cut
    ///    leaves at most that file beside the old one;
    /// 2. it is renamed to `path` — a cut may undo the rename (the folder is
    ///    not synced yet): the same as 1;
    /// 3. the folder is synced — from here the new file is there, whole (its
    ///    bytes were synced before it got its name).
    static func replaceDurably(_ path: FilePath, with bytes: [UInt8], via unfinished: FilePath) throws {
        if StorageDirectory.exists(unfinished) { try StorageDirectory.removeFile(unfinished) }  // left by a cut before a rename
        try create(unfinished, holding: bytes, sync: true)
        try StorageDirectory.rename(unfinished, to: path)
        try StorageDirectory.sync(path.removingLastComponent())
    }

    /// The bytes of the file at `path` (a small one: read with one call).
    static func readWhole(_ path: FilePath) throws -> [UInt8] {
        let file = try open(path)
        defer { file.close() }
        var bytes = [UInt8](repeating: 0, count: Int(try file.size()))
        let got = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        return Array(bytes[..<got])
    }
}
