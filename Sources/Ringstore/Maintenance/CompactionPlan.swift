/// What compaction keeps of one stream: the events reads still show.
///
/// Reads hide, per stream, a prefix of its versions (`truncateBefore`,
/// `maxCount`, a soft delete) and events older than `maxAge` (timestamps do not
/// decrease within a stream, so that is a prefix too); a hard-deleted stream
/// shows nothing; a snapshot stream shows its last event. Compaction removes
/// exactly what is hidden, with one exception: a stream that shows nothing but
/// can still be written (soft-deleted, or everything past `maxAge`) keeps its
/// last event, hidden as before, because the next append's version (and an
/// expected-version check) is the stored last version + 1. Metadata streams
/// (`$$…`) are kept whole: they are read as they are, and hold tombstones.
enum CompactionPlan: Equatable, Sendable {
    /// Delete the stream's file: it can never be read or written again.
    case drop
    /// Keep versions from `firstVersion` on, and of those only events no older
    /// than `notBefore` (nanoseconds since 1970) — except the last, always kept.
    case keep(firstVersion: UInt64, notBefore: Int64?)

    /// The plan for `stream`, whose last stored version is `lastVersion`, as
    /// `store`'s reads see it now.
    static func plan(for stream: String, lastVersion: UInt64, in store: EventStore) throws -> CompactionPlan {
        if stream.hasPrefix(SystemStreams.snapshotPrefix) { return .keep(firstVersion: lastVersion, notBefore: nil) }
        if SystemStreams.isSystem(stream) { return .keep(firstVersion: 0, notBefore: nil) }
        let state = try store.metadataState(of: stream)
        if state.tombstoned { return .drop }
        if state.metadata.isEmpty { return .keep(firstVersion: 0, notBefore: nil) }
        do {
            let visibility = try store.visibility(of: stream, lastVersion: lastVersion)
            return .keep(firstVersion: min(visibility.firstVersion, lastVersion), notBefore: visibility.notBefore)
        } catch let error as RingstoreError where error.code == .streamNotFound {
            return .keep(firstVersion: lastVersion, notBefore: nil)  // soft-deleted: the version anchor only
        }
    }
}
