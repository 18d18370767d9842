import CLZ4
import Glibc
import Synchronization

/// Decoding against a segment's dictionary with the dictionary placed right
/// before the output, one scratch buffer per thread.
///
/// Why: given a dictionary elsewhere in memory, LZ4 decodes through its
/// external-dictionary loop, which checks every match for whether it reaches
/// into the dictionary; when the dictionary ends where the output begins,
/// `LZ4_decompress_safe_usingDict` sees a prefix and takes the loop of an
/// ordinary block (`$all` over 100,000 streams decodes an entry for about
/// every second event, and the external-dictionary loop was its largest
/// cost). So each thread keeps `[dictionary | output]`: the dictionary is
/// copied in only when the thread meets another one (a segment's entries
/// are read one after another), the entry is decoded behind it, and only
/// the output is copied out. The result is the same bytes either way.
///
/// The thread's buffer is freed when the thread exits. A dictionary is known
/// by its serial number, never by address (a freed dictionary's address may
/// be reused by another).
enum DictionaryDecodeScratch {
    /// Outputs up to this many bytes go through the scratch; larger ones (no
    /// dictionary entry is, see ``CompressionDictionary/entryLimit``) are decoded in place.
    static let outputBytes = 64 << 10

    private struct Scratch {
        /// The serial number of the dictionary the buffer holds (0: none).
        var serial: UInt64
        /// ``CompressionDictionary/maxBytes`` for the dictionary, right-aligned, then ``outputBytes``.
        let buffer: UnsafeMutableRawPointer
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { kept in
            guard let kept else { return }
            let scratch = kept.assumingMemoryBound(to: Scratch.self)
            scratch.pointee.buffer.deallocate()
            scratch.deinitialize(count: 1)
            scratch.deallocate()
        }
        precondition(created == 0, "pthread_key_create failed: \(created)")
        return key
    }()

    /// The calling thread's scratch, made on first use (nil if it could not be kept).
    private static func current() -> UnsafeMutablePointer<Scratch>? {
        if let kept = pthread_getspecific(key) { return kept.assumingMemoryBound(to: Scratch.self) }
        let scratch = UnsafeMutablePointer<Scratch>.allocate(capacity: 1)
        scratch.initialize(to: Scratch(serial: 0, buffer: .allocate(byteCount: CompressionDictionary.maxBytes + outputBytes, alignment: 64)))
        guard pthread_setspecific(key, scratch) == 0 else {
            scratch.pointee.buffer.deallocate()
            scratch.deinitialize(count: 1)
            scratch.deallocate()
            return nil
        }
        return scratch
    }

    /// Decodes `stored` against `dictionary` into `destination` as
    /// `LZ4_decompress_safe_partial_usingDict` would (`count` bytes at most,
    /// `count` ≤ `destination.count`): the size produced, negative if the bytes
    /// are malformed; nil if the scratch cannot take it (the caller decodes in place).
    static func decode(_ stored: UnsafeRawBufferPointer, against dictionary: CompressionDictionary, count: Int, partial: Bool,
                       into destination: UnsafeMutableRawBufferPointer) -> Int32? {
        guard count <= outputBytes, count <= destination.count, let source = stored.baseAddress,
              let target = destination.baseAddress, let scratch = current() else { return nil }
        let output = scratch.pointee.buffer + CompressionDictionary.maxBytes
        let dictionaryStart = output - dictionary.bytes.count
        if scratch.pointee.serial != dictionary.serial {
            dictionaryStart.copyMemory(from: dictionary.bytes.baseAddress!, byteCount: dictionary.bytes.count)
            scratch.pointee.serial = dictionary.serial
        }
        let from = source.assumingMemoryBound(to: CChar.self)
        let into = output.assumingMemoryBound(to: CChar.self)
        let prefix = UnsafePointer(dictionaryStart.assumingMemoryBound(to: CChar.self))
        let size = partial
            ? LZ4_decompress_safe_partial_usingDict(from, into, Int32(stored.count), Int32(count), Int32(count), prefix, Int32(dictionary.bytes.count))
            : LZ4_decompress_safe_usingDict(from, into, Int32(stored.count), Int32(count), prefix, Int32(dictionary.bytes.count))
        if size > 0 { target.copyMemory(from: output, byteCount: Int(size)) }
        return size
    }
}
