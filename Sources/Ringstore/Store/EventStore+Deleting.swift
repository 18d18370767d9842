/// Deleting streams.
///
/// - **Soft delete** writes metadata with `truncateBefore` = last version + 1
///   and a soft-deleted mark: the stream reads as not found until it is
///   written again, and an append (`.any`, or `.exact` of the old last
///   version) continues at the next version.
/// - **Hard delete** appends a tombstone (event type `$streamDeleted`) to the
///   metadata stream `$$<stream>`. The append that stages it also marks the
///   stream (and its metadata stream) deleted in the writer's index, in the
///   same lock section, so no append can land after it; reads throw
///   ``RingstoreError/Code/streamDeleted``.
///
/// Both are ordinary durable events, so they survive restarts and crashes. In
/// a later session the writer learns of a tombstone when the stream enters its
/// index: at open for streams whose records recovery found in the ring, and
/// through ``DeletionLookup`` (which reads the metadata stream's last event)
/// for the others. The events' space is reclaimed by the offline compaction.
extension EventStore {
    /// Soft-deletes `stream`: it reads as not found (and leaves `streamNames()`
    /// and `$all`) until it is written again, at its next version. Its other
    /// metadata is kept.
    ///
    /// - Throws: `.streamNotFound` if it has no visible events (never written,
    ///   or already deleted), `.streamDeleted` if it was tombstoned,
    ///   `.wrongExpectedVersion` if it is not at `expectedVersion`.
    public func deleteStream(_ stream: String, expectedVersion: ExpectedVersion = .any) async throws {
        try checkOpen()
        try NameRules.validateStreamName(stream)
        try requireExactStreamName(stream)
        _ = try SystemStreams.writableMetadataStream(of: stream)
        var attempt = 0
        while true {
            // After a conflict with a concurrent metadata write, read the metadata stream afresh.
            let state = attempt == 0 ? try metadataState(of: stream) : try loadMetadataState(of: stream)
            if state.tombstoned { throw journal.writer.deletedError(stream) }
            let current = try visibleTail(of: stream)?.lastVersion
            let alreadyDeleted = state.metadata.isSoftDeleted && current.map { $0 < (state.metadata.truncateBefore ?? 0) } ?? true
            guard let current, !alreadyDeleted else {
                throw RingstoreError(.streamNotFound, "cannot delete stream \"\(stream)\": it has no events", stream: stream)
            }
            let matches = switch expectedVersion {
            case .any, .streamExists: true
            case .noStream: false
            case .exact(let version): version == current
            }
            guard matches else {
                throw RingstoreError(.wrongExpectedVersion,
                                     "deleting stream \"\(stream)\" expected \(expectedVersion.text), but the stream is at version \(current)",
                                     stream: stream, currentVersion: current)
            }
            var metadata = state.metadata
            metadata.truncateBefore = current + 1
            metadata.isSoftDeleted = true
            do {
                try await writeMetadata(metadata, for: stream, expected: state.version.map { .exact($0) } ?? .noStream)
                return
            } catch let error as RingstoreError where error.code == .wrongExpectedVersion && error.stream != stream && attempt < 20 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// Hard-deletes `stream`: every later append to it fails with
    /// ``RingstoreError/Code/streamDeleted``, and so do reads, metadata changes,
    /// snapshots and subscriptions. It cannot be undone. A stream with no
    /// events may be tombstoned too (its name is then closed for good).
    ///
    /// - Throws: `.streamDeleted` if it already was, `.wrongExpectedVersion` if
    ///   it is not at `expectedVersion` (checked atomically with the tombstone).
    public func tombstoneStream(_ stream: String, expectedVersion: ExpectedVersion = .any) async throws {
        try checkOpen()
        try NameRules.validateStreamName(stream)
        try requireExactStreamName(stream)
        if try metadataState(of: stream).tombstoned { throw journal.writer.deletedError(stream) }
        let metadataStream = try SystemStreams.writableMetadataStream(of: stream)
        // The writer checks and marks the stream in its index: bring both in.
        try ensureIndexed(stream)
        try ensureIndexed(metadataStream)
        var prepared = try prepare(stream: metadataStream, expectedVersion: .any,
                                   events: [EventData(type: SystemStreams.tombstoneEventType, json: "{}")],
                                   allowReserved: true)
        prepared.tombstone = .init(stream: stream, expected: expectedVersion)
        metadataCache.noteMetadata(of: stream)
        let result = try await appendPrepared(prepared)
        recordMetadataWritten(StreamMetadataState(tombstoned: true, version: result.lastVersion), for: stream)
    }

    /// Adds `stream` to the writer's index if it is not there, with its version and deletion state.
    private func ensureIndexed(_ stream: String) throws {
        let writer = journal.writer
        guard !writer.isIndexed(stream) else { return }
        try writer.introduce(stream, nextVersion: try split.storedNextVersion(of: stream),
                             deleted: try writer.deletions.isDeleted(stream))
    }

    /// At open: teaches the writer which streams are tombstoned.
    func startEnforcingDeletions() throws {
        journal.writer.deletions.install { [weak self] stream in
            guard let self, let owner = SystemStreams.deletionOwner(of: stream) else { return false }
            return try self.metadataState(of: owner).tombstoned
        }
        // Streams recovery found in the ring are indexed already, so the lookup
        // above never sees them. If one was tombstoned, the tombstone (written
        // after its last event) is in the ring too, in its metadata stream.
        let metadataStreams = journal.indexedStreams(withPrefix: SystemStreams.metadataPrefix)
        var deleted: [String] = []
        for metadataStream in metadataStreams {
            let owner = String(metadataStream.dropFirst(SystemStreams.metadataPrefix.count))
            if try metadataState(of: owner).tombstoned { deleted += [owner, metadataStream] }
        }
        journal.writer.markDeleted(deleted)
    }
}
