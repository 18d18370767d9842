import Foundation
import Glibc

/// What the demo's store takes on disk. (Peak memory: ``ProcessMeter``.)
enum ProcessMetrics {
    /// Bytes allocated on disk under `path` (like `du`).
    static func diskUsage(of path: String) -> UInt64 {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: UInt64 = 0
        for case let relative as String in enumerator {
            var info = stat()
            if lstat(path + "/" + relative, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                total += UInt64(info.st_blocks) * 512
            }
        }
        return total
    }

    /// Logical bytes (file sizes) of the regular files under `path`, leaving out
    /// files named `excluded` (the preallocated journal, whose writes are
    /// counted by its cursors instead).
    static func fileBytes(of path: String, excluding excluded: String) -> UInt64 {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: UInt64 = 0
        for case let relative as String in enumerator where relative != excluded {
            var info = stat()
            if lstat(path + "/" + relative, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                total += UInt64(info.st_size)
            }
        }
        return total
    }
}
