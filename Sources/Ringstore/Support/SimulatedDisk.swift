/// What a ``PowerLossSimulation`` knows of the files under its root: for each
/// file, the bytes a power cut cannot take away (its durable image) and the
/// changes made since its last successful `fdatasync`; for the tree, the names
/// that are durable and the directory changes not yet covered by an `fsync` of
/// every directory they touch.
///
/// Files are identified by inode, not by name, so that a rename or an unlink
/// is followed: a write through a descriptor lands on whatever file that
/// descriptor has open, wherever (and whether) it is named. Paths here are
/// relative to the simulation's root ("" is the root itself).
///
/// A value type driven under the simulation's lock; it performs no I/O.
struct SimulatedDisk {
    /// What a name refers to.
    enum Entry: Equatable, Sendable {
        case file(Int)
        case directory
    }

    /// A change to a file's bytes, kept until a sync makes it durable.
    enum FileChange: Sendable {
        case write(offset: UInt64, bytes: [UInt8])
        case truncate(size: UInt64)
    }

    /// A change to the tree, kept until every directory it touches is synced.
    enum DirectoryChange: Sendable {
        case link(String, file: Int)
        case makeDirectory(String)
        case rename(from: String, to: String, file: Int)
        /// A directory renamed with everything under it (one entry moves; the tree follows).
        case renameDirectory(from: String, to: String)
        case unlink(String, file: Int)
        /// `rmdir`. Its entries' unlinks may have been lost while it was not:
        /// whatever is still named under it goes with it (unreachable, as an
        /// orphan after a real file system's check would be).
        case removeDirectory(String)

        /// The directories whose entries it changes.
        var directories: Set<String> {
            switch self {
            case .link(let path, _), .makeDirectory(let path), .unlink(let path, _), .removeDirectory(let path): [SimulatedDisk.parent(of: path)]
            case .rename(let from, let to, _), .renameDirectory(let from, let to): [SimulatedDisk.parent(of: from), SimulatedDisk.parent(of: to)]
            }
        }
    }

    struct File {
        var durable: [UInt8] = []
        var pending: [(sequence: UInt64, change: FileChange)] = []
    }

    struct PendingDirectoryChange {
        var sequence: UInt64
        var change: DirectoryChange
        /// Directories still to be synced before the change is durable.
        var unsynced: Set<String>
    }

    /// The identity of a file on the real file system.
    struct Inode: Hashable {
        var device: UInt64
        var number: UInt64
    }

    private(set) var files: [Int: File] = [:]
    private var nextFile = 0
    private var inodes: [Inode: Int] = [:]
    /// Names that survive any power cut.
    private(set) var durableNames: [String: Entry] = [:]
    private(set) var pendingDirectoryChanges: [PendingDirectoryChange] = []
    /// Orders every change; a sync covers the changes recorded before it began.
    private(set) var sequence: UInt64 = 0

    // MARK: - Starting state

    /// A file found on disk at installation: durable as it is.
    mutating func adopt(_ inode: Inode, at path: String?, contents: [UInt8]) -> Int {
        let id = newFile(inode)
        files[id]!.durable = contents
        if let path { durableNames[path] = .file(id) }
        return id
    }

    /// A directory found on disk at installation.
    mutating func adoptDirectory(at path: String) {
        durableNames[path] = .directory
    }

    /// The file with this inode, if the simulation knows it.
    func file(_ inode: Inode) -> Int? { inodes[inode] }

    // MARK: - Recording

    /// A file newly created at `path`: empty, and named only once its directory is synced.
    mutating func created(_ inode: Inode, at path: String) -> Int {
        let id = newFile(inode)
        record(.link(path, file: id))
        return id
    }

    private mutating func newFile(_ inode: Inode) -> Int {
        nextFile += 1
        files[nextFile] = File()
        inodes[inode] = nextFile  // a reused inode number now means the new file
        return nextFile
    }

    mutating func record(_ change: FileChange, to id: Int) {
        sequence += 1
        files[id, default: File()].pending.append((sequence, change))
    }

    mutating func record(_ change: DirectoryChange) {
        sequence += 1
        pendingDirectoryChanges.append(PendingDirectoryChange(sequence: sequence, change: change, unsynced: change.directories))
    }

    // MARK: - Syncing

    /// A successful `fdatasync`/`fsync` of file `id` that began after change `upTo`.
    mutating func syncFile(_ id: Int, upTo: UInt64) {
        guard var file = files[id] else { return }
        let covered = file.pending.prefix { $0.sequence <= upTo }.count
        for (_, change) in file.pending.prefix(covered) { Self.apply(change, to: &file.durable) }
        file.pending.removeFirst(covered)
        files[id] = file
    }

    /// A successful `fsync` of `directory` that began after change `upTo`.
    mutating func syncDirectory(_ directory: String, upTo: UInt64) {
        for i in pendingDirectoryChanges.indices where pendingDirectoryChanges[i].sequence <= upTo {
            pendingDirectoryChanges[i].unsynced.remove(directory)
        }
        settleDirectoryChanges()
    }

    /// A successful `syncfs` that began after change `upTo`: every file and every directory.
    mutating func syncEverything(upTo: UInt64) {
        for id in Array(files.keys) { syncFile(id, upTo: upTo) }
        syncEveryDirectory(upTo: upTo)
    }

    /// A successful file-system journal commit that began after change `upTo`:
    /// every directory, no file's data.
    mutating func syncEveryDirectory(upTo: UInt64) {
        for i in pendingDirectoryChanges.indices where pendingDirectoryChanges[i].sequence <= upTo {
            pendingDirectoryChanges[i].unsynced = []
        }
        settleDirectoryChanges()
    }

    /// Moves the fully synced directory changes, in order, into the durable names.
    private mutating func settleDirectoryChanges() {
        for pending in pendingDirectoryChanges where pending.unsynced.isEmpty {
            _ = Self.apply(pending.change, to: &durableNames)
        }
        pendingDirectoryChanges.removeAll { $0.unsynced.isEmpty }
    }

    // MARK: - Applying changes

    static func apply(_ change: FileChange, to bytes: inout [UInt8]) {
        switch change {
        case .write(let offset, let data):
            let end = Int(offset) + data.count
            if bytes.count < end { bytes += [UInt8](repeating: 0, count: end - bytes.count) }
            bytes.replaceSubrange(Int(offset)..<end, with: data)
        case .truncate(let size):
            resize(&bytes, to: Int(size))
        }
    }

    static func resize(_ bytes: inout [UInt8], to size: Int) {
        if bytes.count > size { bytes.removeLast(bytes.count - size) } else if bytes.count < size {
            bytes += [UInt8](repeating: 0, count: size - bytes.count)
        }
    }

    /// Applies a directory change to a set of names; false if it no longer
    /// applies there (its file is not where the change expects it: a rename or
    /// unlink whose earlier creation was lost).
    @discardableResult
    static func apply(_ change: DirectoryChange, to names: inout [String: Entry]) -> Bool {
        switch change {
        case .link(let path, let id):
            names[path] = .file(id)
        case .makeDirectory(let path):
            if names[path] == nil { names[path] = .directory }
        case .rename(let from, let to, let id):
            guard names[from] == .file(id) else { return false }
            names[from] = nil
            names[to] = .file(id)
        case .renameDirectory(let from, let to):
            guard names[from] == .directory, names[to] == nil else { return false }
            let prefix = from + "/"
            let moved = names.filter { $0.key == from || $0.key.hasPrefix(prefix) }
            for (path, _) in moved { names[path] = nil }
            for (path, entry) in moved { names[to + path.dropFirst(from.count)] = entry }
        case .unlink(let path, let id):
            guard names[path] == .file(id) else { return false }
            names[path] = nil
        case .removeDirectory(let path):
            guard names[path] == .directory else { return false }
            let prefix = path + "/"
            for name in names.keys where name == path || name.hasPrefix(prefix) { names[name] = nil }
        }
        return true
    }

    /// The names reachable from the root: every folder above them is a directory in `names`.
    static func reachable(_ names: [String: Entry]) -> [(path: String, entry: Entry)] {
        names.filter { path, _ in
            var folder = parent(of: path)
            while !folder.isEmpty {
                guard names[folder] == .directory else { return false }
                folder = parent(of: folder)
            }
            return true
        }
        .map { ($0.key, $0.value) }
        .sorted { $0.path.utf8.count < $1.path.utf8.count || ($0.path.utf8.count == $1.path.utf8.count && $0.path < $1.path) }
    }

    /// The folder holding `path` ("" for a name directly in the root).
    static func parent(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        return String(path[..<slash])
    }
}
