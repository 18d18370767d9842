import SystemPackage

/// A reusable read buffer: one allocation serves every file a pass reads in
/// turn (allocating a large window per file, for 100,000 small stream files,
/// costs an `mmap`, page faults and an `munmap` each).
final class ReadWindow {
    private(set) var bytes: UnsafeMutableRawBufferPointer

    init(bytes count: Int = 8 << 20) {
        bytes = .allocate(byteCount: max(count, 1 << 16), alignment: 16)
    }

    deinit { bytes.deallocate() }

    /// Makes the buffer at least `count` bytes (its contents are then undefined).
    func grow(to count: Int) {
        guard count > bytes.count else { return }
        bytes.deallocate()
        bytes = .allocate(byteCount: count, alignment: 16)
    }
}

/// Reads one file front to back through a large window, so that checking a
/// file costs a few large `pread`s and no allocation per record. Bytes are
/// handed out as raw buffers valid until the next call. Readers sharing one
/// ``ReadWindow`` must not be used at the same time.
struct SequentialReader: ~Copyable {
    let file: StorageFile
    let size: UInt64
    private let window: ReadWindow
    private var windowStart: UInt64 = 0
    private var windowCount = 0
    /// Bytes read from the file so far (for throughput).
    private(set) var bytesRead: UInt64 = 0

    /// `size`: the file's size when the caller knows it (nil: asked of the file, an `fstat`).
    init(file: StorageFile, window: ReadWindow, size: UInt64? = nil) throws {
        self.file = file
        self.size = try size ?? file.size()
        self.window = window
    }

    init(file: StorageFile, windowBytes: Int = 8 << 20) throws {
        try self.init(file: file, window: ReadWindow(bytes: windowBytes))
    }

    /// `[offset, offset + count)`, or nil when the file ends before it.
    /// A range larger than the window grows it.
    mutating func bytes(at offset: UInt64, count: Int) throws -> UnsafeRawBufferPointer? {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else { return nil }
        if offset >= windowStart, offset + UInt64(count) <= windowStart + UInt64(windowCount) {
            let start = Int(offset - windowStart)
            return UnsafeRawBufferPointer(rebasing: window.bytes[start..<(start + count)])
        }
        window.grow(to: count)
        let buffer = window.bytes
        let length = Int(min(UInt64(buffer.count), size - offset))
        var got = 0
        while got < length {
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got..<length]), at: offset + UInt64(got))
            if n == 0 { break }
            got += n
        }
        bytesRead += UInt64(got)
        windowStart = offset
        windowCount = got
        guard got >= count else { return nil }
        return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
    }
}
