/// What the journal writer needs to know about events that have left the ring:
/// the stream files' side of a stream's history. ``StreamDirectory`` provides it.
protocol StoredStreams: Sendable {
    /// The next version of `stream` according to its stream file (0 if it has none).
    func storedNextVersion(of stream: String) throws -> UInt64
    /// Up to `count` events of `stream` from `version` on, from its stream file.
    func storedEvents(of stream: String, from version: UInt64, count: Int) throws -> [RecordedEvent]
    /// The stored name equal to `stream` under `String` equality (the same
    /// bytes, or a canonically equivalent name), if any stream was split under it.
    func storedName(equivalentTo stream: String) -> String?
}
