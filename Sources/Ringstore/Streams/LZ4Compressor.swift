import CLZ4
import Glibc

/// LZ4 block compression with one compression state per thread, kept between calls.
///
/// Why: `LZ4_compress_default` builds its 16 KiB hash table on the stack and
/// clears it for every block. With one-event appends over thousands of streams
/// most blocks hold a few hundred bytes, and clearing that table cost more than
/// compressing them: about 2,400 of the whole store's 23,000 instructions per
/// event (callgrind). `LZ4_resetStream_fast` readies a kept state without
/// clearing it, and a fresh chain compressed with `LZ4_compress_fast_continue`
/// depends on nothing before it: the output is an ordinary LZ4 block that
/// `LZ4_decompress_safe` reads on its own.
enum LZ4Compressor {
    /// The calling thread's state, freed when the thread exits.
    private static let stateKey: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { state in
            guard let state else { return }
            _ = LZ4_freeStream(state.assumingMemoryBound(to: LZ4_stream_t.self))
        }
        precondition(created == 0, "pthread_key_create failed: \(created)")
        return key
    }()

    /// Clears the calling thread's state (`LZ4_initStream`: its whole hash table),
    /// so that what it compresses next no longer depends on what it compressed before.
    ///
    /// Why: a state readied by `LZ4_resetStream_fast` keeps stale table entries,
    /// and a block compressed after other blocks may find other matches than on a
    /// fresh state: still a valid block, but a byte or two different. Compaction
    /// clears the state before each stream it rewrites, so that its files come out
    /// the same whichever of its threads writes a stream (a stream is written by
    /// one thread, block after block). Costs one 16 KiB clear.
    static func clearState() {
        guard let kept = pthread_getspecific(stateKey) else { return }  // none yet: the first one is made clear
        _ = LZ4_initStream(kept, MemoryLayout<LZ4_stream_t>.size)
    }

    /// Compresses `source` into `destination` (at least `LZ4_compressBound(source.count)`
    /// bytes); returns the compressed size, or 0 if it did not fit or no state could be made.
    /// `acceleration` above 1 trades ratio for speed (LZ4's own knob; the output is
    /// an ordinary block either way).
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                         acceleration: Int32 = 1) -> Int {
        guard let base = source.baseAddress, let target = destination.baseAddress, source.count > 0 else { return 0 }
        let state: UnsafeMutablePointer<LZ4_stream_t>
        if let kept = pthread_getspecific(stateKey) {
            state = kept.assumingMemoryBound(to: LZ4_stream_t.self)
        } else {
            guard let made = LZ4_createStream() else { return 0 }
            guard pthread_setspecific(stateKey, made) == 0 else {
                _ = LZ4_freeStream(made)
                return 0
            }
            state = made
        }
        LZ4_resetStream_fast(state)
        let size = LZ4_compress_fast_continue(
            state, base.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(destination.count), acceleration)
        return Int(max(0, size))
    }
}
