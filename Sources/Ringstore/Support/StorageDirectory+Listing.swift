import Glibc
import SystemPackage

extension StorageDirectory {
    /// The names in directory `path` (without `.` and `..`), unsorted.
    /// The corresponding C functions are `opendir` and `readdir`.
    static func entries(of path: FilePath) throws -> [String] {
        guard let directory = opendir(path.string) else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "cannot list directory \(path): \(code)", path: path.string, cause: code)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
