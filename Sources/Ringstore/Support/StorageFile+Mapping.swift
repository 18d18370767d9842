import Glibc
import SystemPackage

/// The journal's mapping and its page-cache advice, through the same seam as
/// every other file call (``RingFile`` owns the mapping; only it calls these).
extension StorageFile {
    /// Maps the first `length` bytes of the file read-only and shared: writes
    /// through the descriptor are seen through the mapping at once.
    ///
    /// The corresponding C function is `mmap`.
    func mapReadOnly(length: Int) throws -> UnsafeRawPointer {
        guard let pointer = mmap(nil, length, PROT_READ, MAP_SHARED, descriptor.rawValue, 0), pointer != MAP_FAILED else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "cannot map \(path) (\(length) bytes): \(code)", path: path.string, cause: code)
        }
        return UnsafeRawPointer(pointer)
    }

    /// Unmaps what ``mapReadOnly(length:)`` mapped. The corresponding C function is `munmap`.
    static func unmap(_ base: UnsafeRawPointer, length: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: base), length)
    }

    /// Drops this process's mapping of `count` bytes at `address` (whole pages,
    /// inside a mapping of this file); the pages stay in the page cache. Advice
    /// only: a failure changes nothing that matters, so it is ignored.
    ///
    /// The corresponding C function is `madvise(MADV_DONTNEED)`.
    static func releaseMappedPages(at address: UnsafeRawPointer, count: Int) {
        _ = madvise(UnsafeMutableRawPointer(mutating: address), count, MADV_DONTNEED)
    }

    /// Asks the kernel to drop the file's clean cached pages in `[offset,
    /// offset + count)` (`count` 0: to the end of the file). Advice only: a
    /// failure is ignored.
    ///
    /// The corresponding C function is `posix_fadvise(POSIX_FADV_DONTNEED)`.
    func dropCache(offset: UInt64, count: Int) {
        _ = posix_fadvise(descriptor.rawValue, Int(offset), count, POSIX_FADV_DONTNEED)
    }

    /// Asks the kernel to start reading `[offset, offset + count)` (`count` 0:
    /// to the end of the file) into the page cache now, without waiting for
    /// it. Advice only: a failure is ignored.
    ///
    /// The corresponding C function is `posix_fadvise(POSIX_FADV_WILLNEED)`.
    func readAhead(offset: UInt64, count: Int) {
        _ = posix_fadvise(descriptor.rawValue, Int(offset), count, POSIX_FADV_WILLNEED)
    }
}
