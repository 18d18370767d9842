import Glibc
import SystemPackage

/// The calls ``StorageFile`` and ``StorageDirectory`` make while a simulation
/// is installed (``PowerLossSimulation/isActive``). Each takes the real system
/// call as `perform` and runs it under the simulation's lock, recording the
/// change in the same step: a sync that begins afterwards then covers it,
/// exactly as the kernel's would. Paths outside every simulation's root pass
/// straight through.
///
/// Once the power is cut, changes are refused with `EIO` and never reach the
/// files, so nothing the still-running store does later counts.
extension PowerLossSimulation {
    /// Counts the operation, fires an armed trigger, and refuses it if the power is cut.
    private static func begin(_ s: inout State, _ operation: Operation) throws(Errno) {
        s.operations += 1
        if var trigger = s.trigger, trigger.matches(operation) {
            trigger.remaining -= 1
            s.trigger = trigger
            if trigger.remaining == 0 {
                let waiters = freeze(&s, at: operation)
                // Resumed off the lock: a waiter's task may run at once.
                if !waiters.isEmpty { Task { for waiter in waiters { waiter.resume(returning: true) } } }
            }
        }
        if s.cut {
            s.refusedAfterCut += 1
            throw Errno.ioError
        }
    }

    private static func inode(of descriptor: FileDescriptor) throws(Errno) -> SimulatedDisk.Inode {
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else { throw Errno(rawValue: errno) }
        return SimulatedDisk.Inode(info)
    }

    /// The simulation's file for an open descriptor (adopting, and reporting, one it never saw).
    private func file(_ descriptor: FileDescriptor, _ relative: String, _ s: inout State) throws(Errno) -> Int {
        let inode = try Self.inode(of: descriptor)
        if let id = s.disk.file(inode) { return id }
        s.untracked.append(relative)
        let contents = (try? Self.readWhole(root + "/" + relative)) ?? []
        return s.disk.adopt(inode, at: relative, contents: contents)
    }

    // MARK: - Files

    /// `open` with `O_CREAT`: a file that did not exist becomes a new, empty file
    /// whose name is durable only once its directory is synced.
    static func open(_ path: FilePath, create: Bool, _ perform: () throws -> FileDescriptor) throws -> FileDescriptor {
        guard create, let (simulation, relative) = covering(path.string) else { return try perform() }
        return try simulation.state.withLock { s throws -> FileDescriptor in
            var info = stat()
            let existed = lstat(path.string, &info) == 0
            if !existed || s.cut { try begin(&s, Operation(kind: .create, path: relative)) }
            let descriptor = try perform()
            if !existed {
                do {
                    _ = s.disk.created(try inode(of: descriptor), at: relative)
                } catch {
                    try? descriptor.close()
                    throw error
                }
            }
            return descriptor
        }
    }

    /// A write of `parts`, back to back, at `offset` (what `perform` writes).
    static func write(_ descriptor: FileDescriptor, _ path: FilePath, at offset: UInt64,
                      _ parts: [UnsafeRawBufferPointer], _ perform: () throws -> Void) throws {
        guard let (simulation, relative) = covering(path.string) else { return try perform() }
        try simulation.state.withLock { s throws in
            try begin(&s, Operation(kind: .write, path: relative, offset: offset))
            let id = try simulation.file(descriptor, relative, &s)
            try perform()
            var bytes: [UInt8] = []
            bytes.reserveCapacity(parts.reduce(0) { $0 + $1.count })
            for part in parts { bytes += part }
            s.disk.record(.write(offset: offset, bytes: bytes), to: id)
        }
    }

    static func truncate(_ descriptor: FileDescriptor, _ path: FilePath, to size: UInt64, _ perform: () throws -> Void) throws {
        guard let (simulation, relative) = covering(path.string) else { return try perform() }
        try simulation.state.withLock { s throws in
            try begin(&s, Operation(kind: .truncate, path: relative, offset: size))
            let id = try simulation.file(descriptor, relative, &s)
            try perform()
            s.disk.record(.truncate(size: size), to: id)
        }
    }

    /// `fdatasync`: the file's changes recorded before it began become durable
    /// when it returns — unless the power was cut meanwhile. Returns false for a
    /// path outside every simulation (the caller then makes the real call); the
    /// real call is skipped inside one, where only the simulation decides what is durable.
    static func syncFile(_ descriptor: FileDescriptor, _ path: FilePath) throws -> Bool {
        guard let (simulation, relative) = covering(path.string) else { return false }
        let (id, sequence) = try simulation.state.withLock { s throws -> (Int, UInt64) in
            try begin(&s, Operation(kind: .syncFile, path: relative))
            return (try simulation.file(descriptor, relative, &s), s.disk.sequence)
        }
        try simulation.state.withLock { s throws in
            if s.cut { throw Errno.ioError }  // the power went while it was in flight
            s.disk.syncFile(id, upTo: sequence)
        }
        return true
    }

    // MARK: - Directories

    /// `mkdir`; `perform` returns whether it created the directory (false: it existed).
    static func makeDirectory(_ path: FilePath, _ perform: () throws -> Bool) throws {
        guard let (simulation, relative) = covering(path.string), !relative.isEmpty else { _ = try perform(); return }
        try simulation.state.withLock { s throws in
            try begin(&s, Operation(kind: .makeDirectory, path: relative))
            if try perform() { s.disk.record(.makeDirectory(relative)) }
        }
    }

    static func rename(_ from: FilePath, to: FilePath, _ perform: () throws -> Void) throws {
        guard let (simulation, relativeFrom) = covering(from.string) else { return try perform() }
        guard let relativeTo = simulation.relative(to.string) else { return try perform() }
        try simulation.state.withLock { s throws in
            try begin(&s, Operation(kind: .rename, path: relativeFrom))
            var info = stat()
            let exists = lstat(from.string, &info) == 0
            let id = exists && info.st_mode & S_IFMT == S_IFREG ? s.disk.file(SimulatedDisk.Inode(info)) : nil
            let directory = exists && info.st_mode & S_IFMT == S_IFDIR
            try perform()
            if let id {
                s.disk.record(.rename(from: relativeFrom, to: relativeTo, file: id))
            } else if directory {
                s.disk.record(.renameDirectory(from: relativeFrom, to: relativeTo))
            } else {
                s.untracked.append(relativeFrom)
            }
        }
    }

    /// `unlink`; `perform` returns whether it removed a name (false: there was none).
    static func remove(_ path: FilePath, _ perform: () throws -> Bool) throws {
        guard let (simulation, relative) = covering(path.string) else { _ = try perform(); return }
        try simulation.state.withLock { s throws in
            try begin(&s, Operation(kind: .remove, path: relative))
            var info = stat()
            let id = lstat(path.string, &info) == 0 ? s.disk.file(SimulatedDisk.Inode(info)) : nil
            if try perform(), let id { s.disk.record(.unlink(relative, file: id)) }
        }
    }

    /// `rmdir`; `perform` returns whether it removed a directory (false: there was none).
    static func removeDirectory(_ path: FilePath, _ perform: () throws -> Bool) throws {
        guard let (simulation, relative) = covering(path.string), !relative.isEmpty else { _ = try perform(); return }
        try simulation.state.withLock { s throws in
            try begin(&s, Operation(kind: .removeDirectory, path: relative))
            if try perform() { s.disk.record(.removeDirectory(relative)) }
        }
    }

    /// `fsync` of a directory: its entry changes recorded before it began become
    /// durable. False (make the real call) outside every simulation.
    static func syncDirectory(_ path: FilePath) throws -> Bool {
        guard let (simulation, relative) = covering(path.string) else { return false }
        let sequence = try simulation.state.withLock { s throws -> UInt64 in
            try begin(&s, Operation(kind: .syncDirectory, path: relative))
            return s.disk.sequence
        }
        try simulation.state.withLock { s throws in
            if s.cut { throw Errno.ioError }
            s.disk.syncDirectory(relative, upTo: sequence)
        }
        return true
    }

    /// `syncfs`: every file and every directory entry under the root. False
    /// (make the real call) outside every simulation.
    static func syncFileSystem(_ path: FilePath) throws -> Bool {
        guard let (simulation, relative) = covering(path.string) else { return false }
        let sequence = try simulation.state.withLock { s throws -> UInt64 in
            try begin(&s, Operation(kind: .syncFileSystem, path: relative))
            return s.disk.sequence
        }
        try simulation.state.withLock { s throws in
            if s.cut { throw Errno.ioError }
            s.disk.syncEverything(upTo: sequence)
        }
        return true
    }

    /// A file-system journal commit (``FileSystemCommit``): every directory
    /// entry changed before it began; files' data only as they were synced.
    /// False (make the real call) outside every simulation.
    static func commitFileSystem(_ path: FilePath) throws -> Bool {
        guard let (simulation, relative) = covering(path.string) else { return false }
        let sequence = try simulation.state.withLock { s throws -> UInt64 in
            try begin(&s, Operation(kind: .commitFileSystem, path: relative))
            return s.disk.sequence
        }
        try simulation.state.withLock { s throws in
            if s.cut { throw Errno.ioError }
            s.disk.syncEveryDirectory(upTo: sequence)
        }
        return true
    }
}
