import CRingstoreSupport
import Glibc
import Synchronization
import SystemPackage

/// An open file and its path: the one place the engine's file I/O goes through.
///
/// Every method retries `EINTR` (through ``retryingInterrupts(_:)``), completes
/// short writes, and turns a failing system call into a ``RingstoreError`` that
/// names the file and offset. Keeping all calls here gives tests one seam to
/// inject faults into (``FaultInjection``) and to simulate power cuts at
/// (``PowerLossSimulation``); the journal's mapping and its page-cache advice
/// go through it too (`StorageFile+Mapping`).
struct StorageFile: Sendable {
    /// Calls `call`, a C function that returns a negative value and sets
    /// `errno` when it fails, again for as long as it fails with `EINTR`;
    /// returns its result, or throws the `Errno` of any other failure.
    @inline(__always)
    static func retryingInterrupts<T: SignedInteger>(_ call: () -> T) throws(Errno) -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = Errno(rawValue: errno)
            if code != .interrupted { throw code }
        }
    }

    /// The descriptor's number, shared by every copy of this value, so that
    /// closing any copy closes the file for all of them: a copy used after the
    /// close gets `EBADF` (a clear error) instead of writing into whichever
    /// file was given the number next, and a second close does nothing.
    private final class SharedDescriptor: Sendable {
        let raw: Atomic<Int32>
        init(_ raw: Int32) { self.raw = Atomic(raw) }
    }
    private let shared: SharedDescriptor
    let path: FilePath

    /// The open descriptor (`-1` once closed).
    var descriptor: FileDescriptor { FileDescriptor(rawValue: shared.raw.load(ordering: .acquiring)) }

    private init(descriptor: FileDescriptor, path: FilePath) {
        self.shared = SharedDescriptor(descriptor.rawValue)
        self.path = path
    }

    /// Opens (and with `create`, creates) a file for reading and writing.
    static func open(_ path: FilePath, create: Bool = false, exclusive: Bool = false) throws -> StorageFile {
        var options: FileDescriptor.OpenOptions = [.closeOnExec]
        if create { options.insert(.create) }
        if exclusive { options.insert(.exclusiveCreate) }
        do {
            try FaultInjection.check(.open, path)
            let open = {
                try FileDescriptor.open(
                    path, .readWrite, options: options,
                    permissions: create ? [.ownerReadWrite, .groupRead, .otherRead] : nil,
                    retryOnInterrupt: true)
            }
            let fd = PowerLossSimulation.isActive ? try PowerLossSimulation.open(path, create: create, open) : try open()
            return StorageFile(descriptor: fd, path: path)
        } catch {
            throw RingstoreError(.ioError, "cannot open \(path): \(error)", path: path.string, cause: error)
        }
    }

    /// Closes the file, for every copy of this value. Meant to be called once
    /// per opened file, by its one owner: before copies shared the descriptor,
    /// a second close of the same number could close a file that another
    /// thread (or another store in this process) had opened meanwhile and been
    /// given that number, and its writes then landed in whichever file was
    /// opened next. A second close now does nothing; debug builds trap on it,
    /// so that tests still find the owner that closes twice.
    func close() {
        let raw = shared.raw.exchange(-1, ordering: .acquiringAndReleasing)
        guard raw >= 0 else {
            assertionFailure("\(path) closed twice")
            return
        }
        try? FileDescriptor(rawValue: raw).close()
    }

    /// Writes all of `bytes` at `offset` (`pwrite`, repeated until complete).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        do {
            try FaultInjection.check(.write, path)
            if PowerLossSimulation.isActive {
                try PowerLossSimulation.write(descriptor, path, at: offset, [bytes]) {
                    _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes)
                }
            } else {
                _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes)
            }
        } catch {
            throw RingstoreError(.ioError, "write of \(bytes.count) bytes to \(path) at offset \(offset) failed: \(error)",
                                 path: path.string, offset: offset, cause: error)
        }
    }

    /// A page of zeros, for ``write(_:followedByZeros:at:)``.
    static let zeroPage = [UInt8](repeating: 0, count: 4096)

    /// Writes `bytes` and then `zeroCount` (at most 4096) zero bytes at `offset`,
    /// with one `pwritev` (what it leaves unwritten is written with `pwrite`).
    func write(_ bytes: UnsafeRawBufferPointer, followedByZeros zeroCount: Int, at offset: UInt64) throws {
        precondition(zeroCount >= 0 && zeroCount <= Self.zeroPage.count, "at most a page of zeros")
        guard zeroCount > 0, bytes.baseAddress != nil else { return try write(bytes, at: offset) }
        do {
            try FaultInjection.check(.write, path)
            if PowerLossSimulation.isActive {
                try Self.zeroPage.withUnsafeBytes { zeros in
                    let parts = [bytes, UnsafeRawBufferPointer(rebasing: zeros[0..<zeroCount])]
                    try PowerLossSimulation.write(descriptor, path, at: offset, parts) {
                        try writeVector(bytes, followedByZeros: zeroCount, at: offset)
                    }
                }
            } else {
                try writeVector(bytes, followedByZeros: zeroCount, at: offset)
            }
        } catch {
            throw RingstoreError(.ioError, "write of \(bytes.count) bytes to \(path) at offset \(offset) failed: \(error)",
                                 path: path.string, offset: offset, cause: error)
        }
    }

    /// The `pwritev` of ``write(_:followedByZeros:at:)``, completed with `pwrite`.
    private func writeVector(_ bytes: UnsafeRawBufferPointer, followedByZeros zeroCount: Int, at offset: UInt64) throws {
        let base = bytes.baseAddress!
        let total = bytes.count + zeroCount
        let written = try Self.retryingInterrupts {
            Self.zeroPage.withUnsafeBytes { zeros in
                var vectors = [iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: bytes.count),
                               iovec(iov_base: UnsafeMutableRawPointer(mutating: zeros.baseAddress!), iov_len: zeroCount)]
                return Glibc.pwritev(descriptor.rawValue, &vectors, 2, off_t(offset))
            }
        }
        if written < bytes.count {
            _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset) + Int64(written),
                                        UnsafeRawBufferPointer(rebasing: bytes[written...]))
        }
        if written < total {
            let zerosDone = max(0, written - bytes.count)
            try Self.zeroPage.withUnsafeBytes { zeros in
                _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset) + Int64(bytes.count + zerosDone),
                                            UnsafeRawBufferPointer(rebasing: zeros[zerosDone..<zeroCount]))
            }
        }
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (fewer only at end of file).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n: Int
            do {
                n = try descriptor.read(fromAbsoluteOffset: Int64(offset) + Int64(done),
                                        into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]),
                                        retryOnInterrupt: true)
            } catch {
                throw RingstoreError(.ioError, "read from \(path) at offset \(offset) failed: \(error)",
                                     path: path.string, offset: offset, cause: error)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Flushes the file's data (and the metadata needed to read it back) to stable storage.
    ///
    /// The corresponding C function is `fdatasync`.
    func syncData() throws {
        do {
            try FaultInjection.check(.flush, path)
            if PowerLossSimulation.isActive, try PowerLossSimulation.syncFile(descriptor, path) { return }
        } catch {
            throw RingstoreError(.ioError, "fdatasync of \(path) failed: \(error)", path: path.string, cause: error)
        }
        do {
            _ = try Self.retryingInterrupts { fdatasync(descriptor.rawValue) }
        } catch {
            throw RingstoreError(.ioError, "fdatasync of \(path) failed: \(error)", path: path.string, cause: error)
        }
    }

    /// Writes `[start, end)` again with the bytes the file holds there (read back
    /// through the page cache), so that the next flush covers them: after a failed
    /// `fdatasync`, Linux may have marked those pages clean without writing them,
    /// and a later flush would then succeed without them.
    func rewrite(from start: UInt64, to end: UInt64) throws {
        guard start < end else { return }
        var buffer = [UInt8](repeating: 0, count: Int(min(UInt64(1 << 20), end - start)))
        var at = start
        while at < end {
            let count = Int(min(UInt64(buffer.count), end - at))
            let got = try buffer.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), at: at) }
            guard got > 0 else { return }  // shorter than expected: nothing more to write again
            try buffer.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<got]), at: at) }
            at += UInt64(got)
        }
    }

    /// Starts writing back `count` bytes from `offset` (`sync_file_range` with
    /// `SYNC_FILE_RANGE_WRITE`) without waiting for them, so that the next sync
    /// finds little left to write. A hint: it makes nothing durable, and a
    /// failure is ignored (the sync that follows reports any I/O error). The
    /// power-loss simulation skips it, since it changes nothing it models.
    func startWriteback(from offset: UInt64, count: UInt64) {
        guard count > 0, !PowerLossSimulation.isActive else { return }
        _ = rs_start_writeback(descriptor.rawValue, Int64(offset), Int64(count))
    }

    /// Waits until the writeback already started in `count` bytes from `offset`
    /// has reached the device (`sync_file_range(SYNC_FILE_RANGE_WAIT_BEFORE)`):
    /// pacing, not durability (it neither flushes the device's cache nor writes
    /// the file's metadata).
    ///
    /// Why only `WAIT_BEFORE`, not `WRITE | WAIT_AFTER` as well: the range's last
    /// page is usually shared with the next write (files grow by appends), which
    /// dirties it again; `WRITE` would write that page once more and
    /// `WAIT_AFTER` wait for it, a synchronous write on every call. This call
    /// paces the writer; writing is not its job.
    ///
    /// A failure is ignored, as ``startWriteback(from:count:)``'s is; the
    /// power-loss simulation skips it too.
    func finishWriteback(from offset: UInt64, count: UInt64) {
        guard count > 0, !PowerLossSimulation.isActive else { return }
        _ = rs_finish_writeback(descriptor.rawValue, Int64(offset), Int64(count))
    }

    /// The file's size in bytes.
    func size() throws -> UInt64 {
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "fstat of \(path) failed: \(code)", path: path.string, cause: code)
        }
        return UInt64(info.st_size)
    }

    /// Takes an exclusive advisory lock without waiting (`flock(LOCK_EX | LOCK_NB)`).
    /// Returns false when someone else holds it.
    func tryLockExclusive() throws -> Bool {
        do {
            _ = try Self.retryingInterrupts { flock(descriptor.rawValue, LOCK_EX | LOCK_NB) }
            return true
        } catch .wouldBlock {
            return false
        } catch {
            throw RingstoreError(.ioError, "flock of \(path) failed: \(error)", path: path.string, cause: error)
        }
    }

    /// Releases a `flock` (on the open file description, so also for any copy
    /// of the descriptor a child process briefly holds between fork and exec).
    func unlock() {
        _ = flock(descriptor.rawValue, LOCK_UN)
    }

    /// Sets the file's size (`ftruncate`).
    func truncate(to size: UInt64) throws {
        do {
            try FaultInjection.check(.write, path)
            if PowerLossSimulation.isActive {
                try PowerLossSimulation.truncate(descriptor, path, to: size) {
                    try descriptor.resize(to: Int64(size), retryOnInterrupt: true)
                }
            } else {
                try descriptor.resize(to: Int64(size), retryOnInterrupt: true)
            }
        } catch {
            throw RingstoreError(.ioError, "resizing \(path) to \(size) bytes failed: \(error)", path: path.string, cause: error)
        }
    }
}

/// Directory-level operations: creation, atomic rename, and syncing a directory
/// so that a new or renamed entry survives power loss.
enum StorageDirectory {
    static func create(_ path: FilePath) throws {
        /// True if it created the directory, false if one was there.
        func makeDirectory() throws -> Bool {
            if mkdir(path.string, 0o755) == 0 { return true }
            let code = Errno(rawValue: errno)
            if code == .fileExists { return false }
            throw code
        }
        do {
            try FaultInjection.check(.open, path)
            if PowerLossSimulation.isActive {
                try PowerLossSimulation.makeDirectory(path, makeDirectory)
            } else {
                _ = try makeDirectory()
            }
        } catch {
            throw RingstoreError(.ioError, "cannot create directory \(path): \(error)", path: path.string, cause: error)
        }
    }

    static func exists(_ path: FilePath) -> Bool {
        var info = stat()
        return stat(path.string, &info) == 0
    }

    static func isDirectory(_ path: FilePath) -> Bool {
        var info = stat()
        return stat(path.string, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Renames `from` to `to`, replacing `to` atomically.
    static func rename(_ from: FilePath, to: FilePath) throws {
        func rename() throws {
            if Glibc.rename(from.string, to.string) != 0 { throw Errno(rawValue: errno) }
        }
        do {
            try FaultInjection.check(.rename, from)
            if PowerLossSimulation.isActive { try PowerLossSimulation.rename(from, to: to, rename) } else { try rename() }
        } catch {
            throw RingstoreError(.ioError, "cannot rename \(from) to \(to): \(error)", path: from.string, cause: error)
        }
    }

    /// Removes a file's name (`unlink`), ignoring failure: for cleaning up after
    /// another failure, where a leftover file is harmless.
    static func remove(_ path: FilePath) {
        try? removeFile(path)
    }

    /// Removes a file's name (`unlink`); a file that is not there is no error.
    /// For callers that go on as if the file were gone, and would otherwise
    /// find it again (and again).
    static func removeFile(_ path: FilePath) throws {
        try removeName(path, what: "", unlink, simulated: PowerLossSimulation.remove)
    }

    /// Removes an empty directory (`rmdir`); one that is not there is no error.
    static func removeDirectory(_ path: FilePath) throws {
        try removeName(path, what: "directory ", rmdir, simulated: PowerLossSimulation.removeDirectory)
    }

    /// `unlink` or `rmdir` (`call`) through the power-loss simulation's seam
    /// when one is active; a name that is not there is no error.
    private static func removeName(_ path: FilePath, what: String, _ call: @escaping (UnsafePointer<CChar>) -> Int32,
                                   simulated: (FilePath, () throws -> Bool) throws -> Void) throws {
        func remove() throws -> Bool {
            if call(path.string) == 0 { return true }
            let code = Errno(rawValue: errno)
            if code == .noSuchFileOrDirectory { return false }
            throw code
        }
        do {
            if PowerLossSimulation.isActive { try simulated(path, remove) } else { _ = try remove() }
        } catch {
            throw RingstoreError(.ioError, "cannot remove \(what)\(path): \(error)", path: path.string, cause: error)
        }
    }

    /// Deletes a file or a folder with everything under it (nothing if absent):
    /// every file unlinked and every folder removed through this seam, folders
    /// deepest first once their files are gone, so that a power-loss simulation
    /// sees (and can cut between) each step. A symbolic link is removed, never followed.
    ///
    /// A large tree's files are unlinked by `threads` threads at once. Why: on a
    /// file system mounted with online discard each unlink waits for the device
    /// to discard the file's blocks (about a millisecond for a small file), so
    /// removing 40,000 stream files one after another took 48 s, and 16 at a
    /// time 2.7 s; the wait is the device's, not the CPU's. Unlinks are
    /// independent, so their order does not matter to what a crash leaves.
    static func removeTree(_ path: FilePath, threads: Int = 16) throws {
        var info = stat()
        guard lstat(path.string, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFDIR else { return try removeFile(path) }
        var files: [FilePath] = []
        var folders: [FilePath] = []  // parents before children
        func collect(_ folder: FilePath) throws {
            folders.append(folder)
            for name in try entries(of: folder) {
                let child = folder.appending(name)
                var info = stat()
                guard lstat(child.string, &info) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFDIR { try collect(child) } else { files.append(child) }
            }
        }
        try collect(path)
        if files.count < 256 || threads <= 1 {
            for file in files { try removeFile(file) }
        } else {
            try ParallelRemoval.unlink(files, threads: threads, owner: path.string)
        }
        for folder in folders.reversed() { try removeDirectory(folder) }
    }

    /// Makes the directory's entries durable (`fsync` on the directory).
    static func sync(_ path: FilePath) throws {
        let fd = Glibc.open(path.string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "cannot open directory \(path) to sync it: \(code)", path: path.string, cause: code)
        }
        defer { _ = Glibc.close(fd) }
        do {
            try FaultInjection.check(.flush, path)
            if PowerLossSimulation.isActive, try PowerLossSimulation.syncDirectory(path) { return }
        } catch {
            throw RingstoreError(.ioError, "fsync of directory \(path) failed: \(error)", path: path.string, cause: error)
        }
        do {
            _ = try StorageFile.retryingInterrupts { fsync(fd) }
        } catch {
            throw RingstoreError(.ioError, "fsync of directory \(path) failed: \(error)", path: path.string, cause: error)
        }
    }

    /// Flushes every dirty file on the file system holding `path` (one call for
    /// thousands of files). The corresponding C function is `syncfs`.
    static func syncFileSystem(containing path: FilePath) throws {
        let fd = Glibc.open(path.string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "cannot open \(path) to sync it: \(code)", path: path.string, cause: code)
        }
        defer { _ = Glibc.close(fd) }
        do {
            try FaultInjection.check(.flush, path)
            if PowerLossSimulation.isActive, try PowerLossSimulation.syncFileSystem(path) { return }
        } catch {
            throw RingstoreError(.ioError, "syncfs for \(path) failed: \(error)", path: path.string, cause: error)
        }
        do {
            _ = try StorageFile.retryingInterrupts { rs_syncfs(fd) }
        } catch {
            throw RingstoreError(.ioError, "syncfs for \(path) failed: \(error)", path: path.string, cause: error)
        }
    }
}
