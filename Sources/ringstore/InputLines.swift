import Glibc

/// Lines of standard input as raw bytes (without the `\n` or `\r\n`).
///
/// `readLine()` would replace invalid UTF-8 with U+FFFD, silently turning a bad
/// stream name into a different, valid one; reading bytes lets `import` reject
/// such a line instead.
struct InputLines: Sequence, IteratorProtocol {
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    mutating func next() -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[start..<newline])
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                start = newline + 1
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            buffer.removeFirst(start)
            start = 0
            let oldCount = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: 1 << 16))
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress! + oldCount, 1 << 16) }
            if n < 0 && errno == EINTR {
                buffer.removeLast(1 << 16)
                continue
            }
            buffer.removeLast((1 << 16) - Swift.max(n, 0))
            if n <= 0 { atEnd = true }
        }
    }
}
