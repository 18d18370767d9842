import Glibc
import RingstoreJSONLines

/// Standard output for commands that print many lines: text is built in one
/// byte buffer and goes out with `write(2)` in chunks of 64 KiB (and whatever is
/// left at the end), so printing a million events takes a few thousand system
/// calls rather than a million, and no `String` or `Data` per line.
struct StandardOutput {
    /// What the next flush writes.
    var buffer = JSONByteBuffer(capacity: chunkSize + (1 << 12))

    static let chunkSize = 1 << 16

    /// Writes the buffer once it holds a chunk.
    mutating func flushIfFull() throws(OutputError) {
        if buffer.count >= Self.chunkSize { try flush() }
    }

    /// Writes everything buffered and empties the buffer.
    mutating func flush() throws(OutputError) {
        let failure: Int32? = buffer.bytes.withUnsafeBytes { pending in
            var offset = 0
            while offset < pending.count {
                let written = write(STDOUT_FILENO, pending.baseAddress! + offset, pending.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        buffer.removeAll()
        if let failure { throw OutputError(errno: failure) }
    }
}

/// Standard output could not be written (a full disk, a closed file).
struct OutputError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { "cannot write to standard output: \(String(cString: strerror(errno)))" }
}
