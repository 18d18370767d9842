import SystemPackage

/// Reads one file front to back through a large reusable window, so that
/// checking a file costs a few large `pread`s and no allocation per record.
/// Bytes are handed out as raw buffers valid until the next call.
struct SequentialReader: ~Copyable {
    let file: StorageFile
    let size: UInt64
    private var window: UnsafeMutableRawBufferPointer
    private var windowStart: UInt64 = 0
    private var windowCount = 0
    /// Bytes read from the file so far (for throughput).
    private(set) var bytesRead: UInt64 = 0

    init(file: StorageFile, windowBytes: Int = 8 << 20) throws {
        self.file = file
        self.size = try file.size()
        self.window = .allocate(byteCount: max(windowBytes, 1 << 16), alignment: 64)
    }

    deinit { window.deallocate() }

    /// `[offset, offset + count)`, or nil when the file ends before it.
    /// A range larger than the window grows it.
    mutating func bytes(at offset: UInt64, count: Int) throws -> UnsafeRawBufferPointer? {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else { return nil }
        if offset >= windowStart, offset + UInt64(count) <= windowStart + UInt64(windowCount) {
            let start = Int(offset - windowStart)
            return UnsafeRawBufferPointer(rebasing: window[start..<(start + count)])
        }
        if count > window.count {
            window.deallocate()
            window = .allocate(byteCount: count, alignment: 64)
        }
        let length = Int(min(UInt64(window.count), size - offset))
        var got = 0
        while got < length {
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: window[got..<length]), at: offset + UInt64(got))
            if n == 0 { break }
            got += n
        }
        bytesRead += UInt64(got)
        windowStart = offset
        windowCount = got
        guard got >= count else { return nil }
        return UnsafeRawBufferPointer(rebasing: window[0..<count])
    }
}
