import Synchronization

/// Where a store's stream files find the store's ``StreamFileDictionary``:
/// one slot per ``StreamDirectory``, shared by every ``StreamFile`` it opens.
///
/// Why shared rather than copied into each file: a running store adopts its
/// dictionary when the segment mover first needs one
/// (``StreamDirectory/adoptDictionary(_:)``), while thousands of files are
/// open, evicted but still held by a reader, or being opened. Setting it in
/// one place that every file reads at each decode leaves no file behind.
/// Set at most once per store session (a store's dictionary never changes
/// while it is open; `compact` replaces it with the whole `streams/` folder),
/// so it is an `AtomicLazyReference`: a decode reads it without a lock.
final class DictionarySlot: Sendable {
    private let value = AtomicLazyReference<CompressionDictionary>()

    init(_ dictionary: CompressionDictionary? = nil) {
        if let dictionary { _ = value.storeIfNil(dictionary) }
    }

    var dictionary: CompressionDictionary? { value.load() }

    /// Fills the slot if it is empty; the dictionary it holds afterwards.
    func fill(_ dictionary: CompressionDictionary) -> CompressionDictionary {
        value.storeIfNil(dictionary)
    }
}
