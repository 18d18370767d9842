import CRingstoreSupport
import Glibc
import SystemPackage

/// Making many files durable at once on a file system with one metadata
/// journal (ext4, ext3), cheaper than `syncfs`.
///
/// Why: `syncfs` commits the file system's journal and then writes every
/// dirtied metadata block (inode tables, bitmaps, folders) to its home
/// location as well, one write each. On an SD card that serves 1,000 writes
/// a second, the segment mover's `syncfs` after each batch of streams cost
/// about 8.5 device writes per stream moved, two thirds of them those home
/// writes, which the file system would otherwise have made once for many
/// batches, later. Here each file's pages are written back and waited for
/// (`sync_file_range`: data only, nothing durable yet), then one `fsync` of a
/// folder, which on ext4 forces a commit of the journal's running
/// transaction: every metadata change made before it (every file's size and
/// blocks, every new file's and folder's entry) in one sequential write that
/// ends with a device cache flush. Then one `fdatasync` of a written file
/// flushes the device's cache even if that commit had nothing to write (a
/// periodic commit took it first). About 3.5 writes per stream moved.
///
/// This relies on ext4's journal (one running transaction for the whole file
/// system, a commit covering every change made before it began), which POSIX
/// does not promise: elsewhere, and on ext4 without a journal, callers use
/// `syncfs`.
enum FileSystemCommit {
    /// ext2/ext3/ext4's `statfs` type.
    static let ext4Magic: Int64 = 0xEF53

    /// Whether `path` lies on an ext4 (or ext3) file system with a journal,
    /// where ``commit(root:writeBack:flushCache:)`` makes files durable. False when that
    /// cannot be told (no `/proc/fs/jbd2`, an unknown device).
    static func isAvailable(at path: FilePath) -> Bool {
        guard rs_file_system_type(path.string) == ext4Magic else { return false }
        var info = stat()
        guard stat(path.string, &info) == 0 else { return false }
        // The block device's name (`loop0`, `mmcblk0p2`), from /sys/dev/block/MAJOR:MINOR.
        let dev = UInt64(info.st_dev)  // glibc's `major`/`minor`, which are macros
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
        let minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
        let link = "/sys/dev/block/\(major):\(minor)"
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(link, &buffer, buffer.count - 1)
        guard count > 0 else { return false }
        let device = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: "/").last.map(String.init) ?? ""
        guard !device.isEmpty else { return false }
        // A journalled ext4 has a folder "<device>-<journal inode>" there (jbd2's statistics).
        let journals = (try? StorageDirectory.entries(of: FilePath("/proc/fs/jbd2"))) ?? []
        return journals.contains { $0.hasPrefix(device + "-") }
    }

    /// Makes the files `writeBack` writes back (their data, sizes and blocks)
    /// and every directory entry made on the file system so far durable, as
    /// `syncfs` would for them:
    /// 1. `writeBack` writes each file's dirty pages and waits for them
    ///    (``StorageFile/writeBackAndWait()``; not durable yet);
    /// 2. `fsync` of `root` (a folder): ext4 commits its journal's running
    ///    transaction (all metadata so far) and flushes the device's cache;
    /// 3. `flushCache` (an `fdatasync` of one of the files): a cache flush, in
    ///    case 2. had nothing left to commit.
    /// A crash or power cut before 3. returns may leave any of the files' new
    /// bytes, sizes and entries durable or not (a torn file end is what readers
    /// already cut); after it, all of them are.
    static func commit(root: FilePath, writeBack: () throws -> Void, flushCache: () throws -> Void) throws {
        try writeBack()
        let simulated: Bool
        do {
            try FaultInjection.check(.flush, root)
            simulated = PowerLossSimulation.isActive ? try PowerLossSimulation.commitFileSystem(root) : false
        } catch {
            throw RingstoreError(.ioError, "committing the file system's journal from \(root) failed: \(error)", path: root.string, cause: error)
        }
        if !simulated { try forceCommit(from: root) }
        try flushCache()
    }

    /// `fsync` of the folder `root`: on ext4, a commit of the journal's running transaction.
    private static func forceCommit(from root: FilePath) throws {
        let fd = Glibc.open(root.string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "cannot open \(root) to commit the file system's journal: \(code)", path: root.string, cause: code)
        }
        defer { _ = Glibc.close(fd) }
        do {
            _ = try StorageFile.retryingInterrupts { fsync(fd) }
        } catch {
            throw RingstoreError(.ioError, "committing the file system's journal from \(root) failed: \(error)", path: root.string, cause: error)
        }
    }
}

extension StorageFile {
    /// Writes the file's dirty pages and waits until the device has them
    /// (`sync_file_range` with `WAIT_BEFORE | WRITE | WAIT_AFTER`): durable only
    /// once a journal commit or a device cache flush follows
    /// (``FileSystemCommit/commit(root:writeBack:flushCache:)``). Under the power-loss
    /// simulation, a sync of the file (its writes may survive any cut after it).
    func writeBackAndWait() throws {
        do {
            try FaultInjection.check(.flush, path)
            if PowerLossSimulation.isActive, try PowerLossSimulation.syncFile(descriptor, path) { return }
        } catch {
            throw RingstoreError(.ioError, "writing back \(path) failed: \(error)", path: path.string, cause: error)
        }
        do {
            _ = try Self.retryingInterrupts { rs_write_back_and_wait(descriptor.rawValue) }
        } catch {
            throw RingstoreError(.ioError, "writing back \(path) failed: \(error)", path: path.string, cause: error)
        }
    }
}
