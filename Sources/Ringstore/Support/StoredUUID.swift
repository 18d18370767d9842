#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension UUID {
    /// The UUID whose 16 bytes start at `offset` of `bytes` (in bounds: the
    /// caller checked it), as `UUID(uuid:)` would make it.
    ///
    /// Why not `UUID(uuid:)` alone: Foundation's initializer is not inlinable and
    /// takes the 16 bytes as 16 separate arguments, about 57 instructions, some
    /// 2 % of handing out a warm `$all` event. `UUID` holds exactly a `uuid_t`,
    /// so the bytes are reinterpreted in place; should a Foundation ever lay it
    /// out otherwise (another size), the initializer is used. A test checks
    /// both agree.
    @inline(__always)
    static func stored(in bytes: UnsafeRawBufferPointer, at offset: Int) -> UUID {
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 16)])) }
        guard MemoryLayout<UUID>.size == MemoryLayout<uuid_t>.size, MemoryLayout<UUID>.alignment == MemoryLayout<uuid_t>.alignment else {
            return UUID(uuid: uuid)
        }
        return unsafeBitCast(uuid, to: UUID.self)
    }
}
