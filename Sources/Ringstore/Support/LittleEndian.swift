/// Fixed-width integers in the little-endian byte layouts of the store's
/// files (the journal header, stream-file headers and indexes, the global
/// index, the catalog, split segments): the one place those layouts touch raw
/// memory. The record and block codecs (``JournalRecord``, ``StreamBlock``)
/// keep their own, tuned for the per-event paths.
///
/// Every read and write is bounds-checked against the buffer: a caller that
/// got its offsets wrong traps here instead of reading or writing outside the
/// buffer. Callers check the length of what they read from disk before
/// decoding it, so bad disk data is refused with an error, never by this trap.
enum LittleEndian {
    /// The `T` stored little-endian at `offset` in `bytes`.
    @inline(__always)
    static func load<T: FixedWidthInteger>(_: T.Type, from bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
        precondition(offset >= 0 && offset <= bytes.count - MemoryLayout<T>.size, "read past the end of a buffer")
        // Safe: the precondition keeps the read inside `bytes`; `loadUnaligned` needs no
        // alignment, and every bit pattern is a valid integer.
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The `T` stored little-endian at `offset` in `bytes`.
    @inline(__always)
    static func load<T: FixedWidthInteger>(_: T.Type, from bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { load(T.self, from: $0, at: offset) }
    }

    /// Stores `value` little-endian at `offset` in `bytes`.
    @inline(__always)
    static func store<T: FixedWidthInteger>(_ value: T, into bytes: UnsafeMutableRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset <= bytes.count - MemoryLayout<T>.size, "write past the end of a buffer")
        // Safe: the precondition keeps the write inside `bytes`; `storeBytes` of a
        // trivial type needs no alignment.
        bytes.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }

    /// Stores `value` little-endian at `offset` in `bytes`.
    @inline(__always)
    static func store<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        bytes.withUnsafeMutableBytes { store(value, into: $0, at: offset) }
    }

    /// Appends `value`'s little-endian bytes to `bytes`.
    @inline(__always)
    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}
