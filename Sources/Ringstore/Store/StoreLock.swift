import Glibc
import Synchronization
import SystemPackage

/// The lock file that keeps a second opener (another process, or a second open
/// in this one) away from a store. Held with `flock`, so the kernel releases it
/// when the holder dies; the holder's pid is written inside so that the error
/// can name it.
final class StoreLock: Sendable {
    static let fileName = "ringstore.lock"
    private let file: Mutex<StorageFile?>

    init(directory: FilePath) throws {
        let path = directory.appending(Self.fileName)
        let file = try StorageFile.open(path, create: true)
        let acquired: Bool
        do { acquired = try file.tryLockExclusive() } catch { file.close(); throw error }
        guard acquired else {
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = (try? bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }) ?? 0
            file.close()
            let holder = String(decoding: bytes[0..<count], as: UTF8.self).trimmingWhitespace
            let who = Int32(holder) == getpid() ? "this process (the store is already open here)" : "process \(holder.isEmpty ? "unknown" : holder)"
            throw RingstoreError(.storeLocked, "store \(directory) is locked by \(who); close it there first",
                                 path: path.string)
        }
        do {
            try file.truncate(to: 0)
            let pid = Array("\(getpid())\n".utf8)
            try pid.withUnsafeBytes { bytes in try file.write(bytes, at: 0) }
        } catch {
            file.close()
            throw error
        }
        self.file = Mutex(file)
    }

    deinit { release() }

    /// Releases the lock (once; later calls do nothing). The pid is left in the
    /// file; it only matters while the file is locked.
    func release() {
        file.withLock { file in
            // Unlock before closing: a process spawned at this moment holds a copy of
            // the descriptor until it execs, and closing ours alone would leave the
            // lock held by that copy (a reopen right after would see `storeLocked`).
            file?.unlock()
            file?.close()
            file = nil
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        String(self.drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
