import Foundation
import Glibc

/// What the process has cost the machine: peak memory and bytes sent to storage.
enum ProcessMetrics {
    /// Peak resident set size in bytes (`getrusage`).
    static var peakResidentBytes: UInt64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return UInt64(usage.ru_maxrss) * 1024
    }

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
