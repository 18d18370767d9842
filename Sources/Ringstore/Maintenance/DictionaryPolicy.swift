/// When `compact` gives a store a ``StreamFileDictionary``, and which streams'
/// blocks use it (``CompactionWriter/dictionaryBlockBytes``). Tests lower the
/// thresholds to reach it with small stores.
struct DictionaryPolicy: Sendable {
    /// Raw bytes of blocks (as `verify` counts them) from which a store gets a
    /// dictionary: its file (two copies of 16 KiB) outweighs what it saves in a
    /// smaller store, where `$all` is quick anyway.
    var fromRawBytes: UInt64 = 4 << 20
    /// Streams with events from which a store gets one (with fewer, the average
    /// stream holds more than 1/``denseShare`` of the events, so most events lie in
    /// streams that keep large blocks anyway).
    var fromStreams = 512
    /// A stream holding at least 1/`denseShare` of the store's events keeps
    /// ``CompactionWriter/plainBlockBytes`` blocks without the dictionary.
    ///
    /// Why: `$all` decodes a block more than once only when the block's events
    /// are spread over more of the global order than its window keeps (32 MiB,
    /// about 110,000 events of 300 bytes). A 64 KiB block holds about 250
    /// events; a stream with 1/512 of the events spreads them over about
    /// 128,000. Denser streams lose nothing to large blocks, and large blocks
    /// suit them better: a store of one stream of 1 M events took 85 MB in
    /// 64 KiB blocks and 95 MB in 4 KiB ones against a dictionary, and read
    /// at 3.35 M events/s against 2.9 M.
    var denseShare = 512

    /// Whether a store of `rawBytes` over `streams` streams gets a dictionary.
    func wantsDictionary(rawBytes: UInt64, streams: Int) -> Bool {
        rawBytes >= fromRawBytes && streams >= fromStreams
    }

    /// Whether a stream of `events` of the store's `total` gets small blocks against the dictionary.
    func isSparse(events: UInt64, of total: Int) -> Bool {
        events.multipliedReportingOverflow(by: UInt64(denseShare)).partialValue < UInt64(max(total, 0))
    }
}
