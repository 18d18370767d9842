import Synchronization

/// Stream metadata: stored as events of the metadata stream `$$<stream>`
/// (KurrentDB's layout), written through the ordinary append path — so it is
/// durable, recovered after a crash and copied into stream files like any
/// event — and the last one wins. ``StreamMetadataCache`` keeps the current
/// metadata of recently used streams so that reads honour a change at once.
extension EventStore {
    /// The stream's current metadata (empty if none was ever set).
    ///
    /// - Throws: ``RingstoreError/Code/streamDeleted`` if the stream was tombstoned.
    public func streamMetadata(of stream: String) throws -> StreamMetadata {
        try checkOpen()
        try NameRules.validateStreamName(stream)
        try requireExactStreamName(stream)
        let state = try metadataState(of: stream)
        if state.tombstoned { throw journal.writer.deletedError(stream) }
        return state.metadata
    }

    /// Replaces the stream's metadata; reads honour it as soon as this returns.
    ///
    /// `expectedMetadataVersion` guards against concurrent changes: it is checked
    /// against the metadata stream (`$$<stream>`, whose current version
    /// ``currentVersion(of:)`` returns), and the result gives the new one.
    /// The stream itself need not exist.
    ///
    /// - Throws: `.streamDeleted` if the stream was tombstoned,
    ///   `.wrongExpectedVersion` on a version conflict, `.invalidArgument` for
    ///   values out of range.
    @discardableResult
    public func setStreamMetadata(_ metadata: StreamMetadata, for stream: String,
                                  expectedMetadataVersion: ExpectedVersion = .any) async throws -> AppendResult {
        try checkOpen()
        try NameRules.validateStreamName(stream)
        try requireExactStreamName(stream)
        try metadata.validate(stream: stream)
        if try metadataState(of: stream).tombstoned { throw journal.writer.deletedError(stream) }
        return try await writeMetadata(metadata, for: stream, expected: expectedMetadataVersion)
    }

    /// Appends a metadata event and records it in the cache once acknowledged.
    @discardableResult
    func writeMetadata(_ metadata: StreamMetadata, for stream: String, expected: ExpectedVersion) async throws -> AppendResult {
        let event = EventData(type: SystemStreams.metadataEventType, data: try metadata.encodedJSON())
        let prepared = try prepare(stream: try SystemStreams.writableMetadataStream(of: stream), expectedVersion: expected,
                                   events: [event], allowReserved: true)
        metadataCache.noteMetadata(of: stream)
        let result = try await appendPrepared(prepared)
        recordMetadataWritten(StreamMetadataState(metadata: metadata, version: result.lastVersion), for: stream)
        return result
    }

    /// Records an acknowledged metadata write in the cache, then wakes the
    /// subscribers.
    ///
    /// Why the second wake-up: the acknowledgement woke them already, before the
    /// cache knew of the write, so a subscriber that looked in between saw the
    /// old state (a tombstoned stream still open) and went back to waiting for a
    /// change that had already happened; without this it would wait until the
    /// next append to the store.
    func recordMetadataWritten(_ written: StreamMetadataState, for stream: String) {
        metadataWriteAcknowledged.reached()
        metadataCache.storeWritten(written, for: stream)
        journal.writer.acknowledger.changes.notify()
    }

    // MARK: - Current metadata

    /// The stream's metadata state, from the cache or loaded from its metadata stream.
    /// System streams have none.
    func metadataState(of stream: String) throws -> StreamMetadataState {
        if SystemStreams.isSystem(stream) { return .none }
        guard metadataCache.mayHaveMetadata(stream, scan: streamsWithMetadata) else { return .none }
        if let cached = metadataCache.lookup(stream) { return cached }
        let generation = metadataCache.generation
        let loaded = try loadMetadataState(of: stream)
        metadataCache.storeLoaded(loaded, for: stream, generation: generation)
        return loaded
    }

    /// Every stream with a metadata stream the store knows of: split ones (the
    /// catalog) and those in the ring or written this session (the writer's index).
    private func streamsWithMetadata() -> [String] {
        let prefix = SystemStreams.metadataPrefix
        let inIndex = journal.indexedStreams(withPrefix: prefix)
        return (catalog.allNames().filter { $0.hasPrefix(prefix) } + inIndex).map { String($0.dropFirst(prefix.count)) }
    }

    /// Reads the last acknowledged event of the stream's metadata stream.
    func loadMetadataState(of stream: String) throws -> StreamMetadataState {
        let metadataStream = SystemStreams.metadataStream(of: stream)
        // The catalog names every split stream, the writer's index every stream
        // written this session or still in the ring.
        guard catalog.number(of: metadataStream) != nil || journal.writer.isIndexed(metadataStream),
              let event = try lastEvent(of: metadataStream)
        else { return .none }
        if event.type == SystemStreams.tombstoneEventType {
            return StreamMetadataState(tombstoned: true, version: event.version)
        }
        return StreamMetadataState(metadata: try StreamMetadata.decode(event.data, stream: stream), version: event.version)
    }

    /// The stream's last acknowledged event, from the ring if it is still there,
    /// else from its stream file; never waits for the splitter.
    func lastEvent(of stream: String) throws -> RecordedEvent? {
        guard let tail = try visibleTail(of: stream) else { return nil }
        if let position = tail.lastPositionInRing,
           let event = try? journal.readEvent(at: position), event.stream == stream, event.version == tail.lastVersion {
            return event
        }
        // Not in the ring (any more): the checkpoint passed it, so its stream file or a split segment holds it.
        guard let event = try split.read(stream: stream, from: tail.lastVersion, direction: .forwards, maxCount: 1).first,
              event.version == tail.lastVersion
        else {
            throw RingstoreError(.corruptData, "stream \"\(stream)\" has acknowledged version \(tail.lastVersion) but neither the journal nor its stream file holds it",
                                 stream: stream)
        }
        return event
    }

    // MARK: - Visibility

    /// Which events of a stream reads show, given its metadata.
    struct StreamVisibility: Sendable {
        /// Versions below this are hidden (truncateBefore, maxCount).
        var firstVersion: UInt64 = 0
        /// Events with earlier timestamps are hidden (maxAge), in nanoseconds since 1970.
        var notBefore: Int64?

        static let everything = StreamVisibility()

        func shows(_ event: RecordedEvent) -> Bool {
            event.version >= firstVersion && notBefore.map { event.timestampNanoseconds >= $0 } ?? true
        }
    }

    /// The time `maxAge` is measured back from: now, unless a test fixed it.
    private func maxAgeNow() -> Int64 {
        let fixed = maxAgeNowForTesting.load(ordering: .relaxed)
        return fixed != 0 ? fixed : wallClockNanoseconds()
    }

    /// What reads of `stream` (whose last version is `lastVersion`) may show.
    ///
    /// - Throws: `.streamDeleted` if it was tombstoned; `.streamNotFound` if it
    ///   was soft-deleted and not written since.
    func visibility(of stream: String, lastVersion: UInt64?) throws -> StreamVisibility {
        // Snapshot streams keep only their last event (implicit maxCount 1).
        if stream.hasPrefix(SystemStreams.snapshotPrefix) { return StreamVisibility(firstVersion: lastVersion ?? 0) }
        let state = try metadataState(of: stream)
        if state.tombstoned { throw journal.writer.deletedError(stream) }
        let metadata = state.metadata
        if metadata.isEmpty { return .everything }
        var first = metadata.truncateBefore ?? 0
        if let maxCount = metadata.maxCount, let last = lastVersion, last + 1 > maxCount {
            first = max(first, last + 1 - maxCount)
        }
        if metadata.isSoftDeleted, lastVersion.map({ $0 < first }) ?? true {
            throw RingstoreError(.streamNotFound, "stream \"\(stream)\" was deleted and has not been written since", stream: stream)
        }
        return StreamVisibility(firstVersion: first,
                                notBefore: metadata.maxAge.map { maxAgeNow() - $0.nanoseconds })
    }

    /// The events of a `$all` page that reads of their streams would show:
    /// system streams (`$…`) and events hidden by their stream's metadata are left out.
    func visibleInAll(_ events: [RecordedEvent]) throws -> [RecordedEvent] {
        // No stream has metadata (the common case): only system streams are hidden,
        // and no lookup per stream is needed.
        if metadataCache.noStreamHasMetadata(scan: streamsWithMetadata) {
            guard events.contains(where: { SystemStreams.isSystem($0.stream) }) else { return events }
            return events.filter { !SystemStreams.isSystem($0.stream) }
        }
        // Runs of one stream share one lookup; events are reached by index (no
        // copies), and the page is copied only if something is hidden. Streams
        // without metadata show everything: known from one set taken for the
        // page (over interleaved streams a run is one event long, and asking the
        // cache took a lock and two lookups per event).
        let mayHaveMetadata = metadataCache.streamsMayHaveMetadata(scan: streamsWithMetadata)
        var kept: [RecordedEvent]?
        var runStart = -1
        var runVisibility: StreamVisibility?
        for index in events.indices {
            if runStart < 0 || events[index].stream != events[runStart].stream {
                runStart = index
                let stream = events[index].stream
                runVisibility = SystemStreams.isSystem(stream) ? nil
                    : mayHaveMetadata.contains(stream) ? try allVisibility(of: stream) : .everything
            }
            let shown = runVisibility.map { visibility in
                events[index].version >= visibility.firstVersion
                    && visibility.notBefore.map { events[index].timestampNanoseconds >= $0 } ?? true
            } ?? false
            if kept == nil {
                if shown { continue }
                kept = Array(events[..<index])
            } else if shown {
                kept!.append(events[index])
            }
        }
        return kept ?? events
    }

    /// A stream's visibility for `$all`; nil when none of its events show.
    func allVisibility(of stream: String) throws -> StreamVisibility? {
        let state = try metadataState(of: stream)
        if state.tombstoned { return nil }
        if state.metadata.isEmpty { return .everything }
        do {
            return try visibility(of: stream, lastVersion: try visibleTail(of: stream)?.lastVersion)
        } catch let error as RingstoreError where error.code == .streamNotFound || error.code == .streamDeleted {
            return nil
        }
    }
}
