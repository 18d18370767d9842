import Foundation

/// Logical sizes (`st_size`) of the files in a folder tree.
enum FileSizes {
    /// The sum of the sizes of the regular files under `path`, except those whose
    /// last path component is in `excluding`.
    static func total(under path: String, excluding: Set<String> = []) -> UInt64 {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: UInt64 = 0
        for case let relative as String in enumerator {
            if excluding.contains((relative as NSString).lastPathComponent) { continue }
            var info = stat()
            if lstat(path + "/" + relative, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                total += UInt64(info.st_size)
            }
        }
        return total
    }
}
