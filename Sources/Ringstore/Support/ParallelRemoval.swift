import SystemPackage

/// Unlinks many files with several threads at once (see
/// ``StorageDirectory/removeTree(_:threads:)`` for why). Each file goes
/// through ``StorageDirectory/removeFile(_:)``, the storage seam; the first
/// failure stops the others and is thrown.
enum ParallelRemoval {
    static func unlink(_ files: [FilePath], threads: Int, owner: String) throws {
        try ParallelLanes.run(count: files.count, lanes: threads, owner: owner, name: "rs-remove") { _, i in
            do {
                try StorageDirectory.removeFile(files[i])
            } catch let error as RingstoreError {
                throw error
            } catch {
                throw RingstoreError(.ioError, "cannot remove \(files[i]): \(error)", path: files[i].string, cause: error)
            }
        }
    }
}
