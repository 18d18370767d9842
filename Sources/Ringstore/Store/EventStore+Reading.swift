/// Reads: one stream from its stream file, or every stream in global order.
///
/// A stream read sees exactly the events acknowledged when its page is
/// fetched. If some of them are still only in the journal, the reader asks the
/// splitter to copy that stream first and waits (polling every millisecond) up
/// to `readerWait`, then fails with ``RingstoreError/Code/readerTimeout``
/// rather than return a short result. `$all` reads take split events from the
/// global index and stream files, and the rest straight from the ring.
extension EventStore {
    /// The events of `stream` from `revision` on, in `direction`, at most `maxCount`.
    ///
    /// Only events the stream's metadata leaves visible are returned (see
    /// ``StreamMetadata``). Iterating throws
    /// ``RingstoreError/Code/streamNotFound`` if the stream has no events or was
    /// soft-deleted and not written since, ``RingstoreError/Code/streamDeleted``
    /// if it was tombstoned, and ``RingstoreError/Code/readerTimeout`` if the
    /// splitter does not catch up with the stream within `readerWait`.
    public func read(stream: String, from revision: StreamRevision = .start, direction: ReadDirection = .forwards,
                     maxCount: Int = .max) -> EventSequence {
        let start: EventSequence.Cursor = switch revision {
        case .start: .start
        case .end: .end
        case .version(let v): .at(v)
        }
        return EventSequence(start: start, maxCount: max(0, maxCount)) { [self] cursor, limit in
            try checkOpen()
            try NameRules.validateStreamName(stream, allowReserved: true)
            try requireExactStreamName(stream)
            return try await readStreamPage(stream: stream, cursor: cursor, direction: direction, limit: limit)
        }
    }

    /// Every event in global (journal) order from `position` on, in `direction`, at most `maxCount`.
    ///
    /// It shows what reads of each stream show: events of system streams
    /// (`$…`: metadata, snapshots) and events hidden by their stream's
    /// metadata (deleted, truncated, beyond `maxCount`, older than `maxAge`)
    /// are left out. Positions are those of the journal, so they have gaps.
    public func readAll(from position: LogPosition = .start, direction: ReadDirection = .forwards,
                        maxCount: Int = .max) -> EventSequence {
        let start: EventSequence.Cursor = switch position {
        case .start: .start
        case .end: .end
        case .position(let p): .at(p)
        }
        // The sequence's own window of decoded blocks, kept across its pages (see ``AllReadWindow``).
        let window = AllReadWindow(budget: allReadBudget)
        return EventSequence(start: start, maxCount: max(0, maxCount)) { [self] cursor, limit in
            try checkOpen()
            let page = try readAllVisiblePage(cursor: cursor, direction: direction, limit: limit, window: window)
            return (page.events, page.next)
        }
    }

    /// The stream's last acknowledged version, or nil if it has no events.
    public func currentVersion(of stream: String) throws -> UInt64? {
        try checkOpen()
        try NameRules.validateStreamName(stream, allowReserved: true)
        try requireExactStreamName(stream)
        return try visibleTail(of: stream)?.lastVersion
    }

    /// The names of every user stream with at least one acknowledged event,
    /// sorted; system streams (`$…`) and deleted streams are left out.
    public func streamNames() throws -> [String] {
        try checkOpen()
        let visible = journal.writer.acknowledged
        let names = Set(journal.indexedStreams(withEventsBelow: visible)).union(catalog.allNames())
        return try names.filter { name in
            if SystemStreams.isSystem(name) { return false }
            // Only streams with a metadata stream can be deleted.
            guard names.contains(SystemStreams.metadataStream(of: name)) else { return true }
            return try allVisibility(of: name) != nil
        }.sorted()
    }

    // MARK: - Streams

    /// What is visible of a stream: its last acknowledged version and, if that
    /// event is still in the ring, its position.
    struct StreamTail {
        var lastVersion: UInt64
        var lastPositionInRing: UInt64?
    }

    func visibleTail(of stream: String) throws -> StreamTail? {
        switch journal.tail(of: stream, visibleBelow: journal.writer.acknowledged) {
        case .last(let version, let position): return StreamTail(lastVersion: version, lastPositionInRing: position)
        case .empty: return nil
        case .notIndexed:
            let next = try split.nextVersion(of: stream)
            return next == 0 ? nil : StreamTail(lastVersion: next - 1, lastPositionInRing: nil)
        }
    }

    private func readStreamPage(stream: String, cursor: EventSequence.Cursor, direction: ReadDirection,
                                limit: Int) async throws -> (events: [RecordedEvent], next: EventSequence.Cursor?) {
        let tail = try visibleTail(of: stream)
        // Metadata first: a tombstoned stream says so even when it has no events.
        let visibility = try visibility(of: stream, lastVersion: tail?.lastVersion)
        guard let tail else {
            throw RingstoreError(.streamNotFound, "stream \"\(stream)\" has no events", stream: stream)
        }
        if let position = tail.lastPositionInRing { try await waitForSplit(of: stream, version: tail.lastVersion, position: position) }
        let last = tail.lastVersion
        let first = visibility.firstVersion
        var from: UInt64 = switch cursor {
        case .start: first
        case .end: last
        case .at(let v): v
        }
        // Pages whose events are all hidden (maxAge) are skipped, so an empty page means the end.
        while true {
            switch direction {
            case .forwards:
                from = max(from, first)
                if from > last { return ([], nil) }
            case .backwards:
                from = min(from, last)
                if from < first { return ([], nil) }
            }
            let start = from
            // A full page is likely followed by another, which starts in the block this one stops inside.
            var events = try split.read(stream: stream, from: start, direction: direction, maxCount: limit,
                                        offer: limit >= EventSequence.pageSize ? .readingOn : .decoded)
            if direction == .forwards { events = events.filter { $0.version <= last } }
            guard let end = events.last else {
                throw RingstoreError(.corruptData, "stream \"\(stream)\" has acknowledged version \(last) but its stream file and split segments hold nothing from version \(start)",
                                     stream: stream)
            }
            var next: UInt64? = switch direction {
            case .forwards: end.version >= last ? nil : end.version + 1
            case .backwards: end.version <= first ? nil : end.version - 1
            }
            if direction == .backwards, end.version < first { events = events.filter { $0.version >= first } }
            if let notBefore = visibility.notBefore {
                if direction == .forwards {
                    events = events.filter { $0.timestampNanoseconds >= notBefore }
                } else if let expired = events.firstIndex(where: { $0.timestampNanoseconds < notBefore }) {
                    // Older events are older still: the read ends here.
                    events.removeSubrange(expired...)
                    next = nil
                }
            }
            if !events.isEmpty { return (events, next.map { .at($0) }) }
            guard let next else { return ([], nil) }
            from = next
        }
    }

    /// Waits until the stream's events up to `version` (at journal `position`) are in its file.
    private func waitForSplit(of stream: String, version: UInt64, position: UInt64) async throws {
        let readers = splitter.readers
        func covered() -> Bool {
            readers.splitPosition.load(ordering: .acquiring) > position || readers.aheadNextVersion(of: stream) > version
        }
        if covered() { return }
        readers.request(stream)
        splitter.splitterDoorbell.ring()
        let started = ContinuousClock.now
        let deadline = started + configuration.readerWait
        while !covered() {
            if ContinuousClock.now >= deadline {
                let lag = journal.writer.acknowledged - readers.splitPosition.load(ordering: .acquiring)
                throw RingstoreError(
                    .readerTimeout,
                    "reading stream \"\(stream)\": waited \(configuration.readerWait) for the splitter to copy it up to version \(version) into its stream file (split lag \(lag) bytes); raise readerWait or check the splitter\(splitter.failure.map { " (it reports: \($0.message))" } ?? "")",
                    stream: stream)
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        let waited = ContinuousClock.now - started
        splitter.readerWaits.record(waited)
        observability.readerWaited(waited)
    }

    // MARK: - $all

    /// A page of `$all` as reads show it (see ``visibleInAll(_:)``), skipping
    /// pages whose events are all hidden. `scanned` is where the next page
    /// continues (after the last event examined, shown or not); nil if none was.
    /// `window` keeps decoded blocks from one page to the next: a reader
    /// passes the same one for all its pages.
    func readAllVisiblePage(cursor: EventSequence.Cursor, direction: ReadDirection, limit: Int, window: AllReadWindow? = nil)
        throws -> (events: [RecordedEvent], next: EventSequence.Cursor?, scanned: EventSequence.Cursor?) {
        let window = window ?? AllReadWindow(budget: allReadBudget)
        var cursor = cursor
        var scanned: EventSequence.Cursor?
        while true {
            let (raw, next) = try readAllPage(cursor: cursor, direction: direction, limit: limit, window: window)
            if raw.isEmpty { return ([], nil, scanned) }
            scanned = next ?? scanned
            let events = try visibleInAll(raw)
            if !events.isEmpty { return (events, next, scanned) }
            guard let next else { return ([], nil, scanned) }
            cursor = next
        }
    }

    private func readAllPage(cursor: EventSequence.Cursor, direction: ReadDirection, limit: Int,
                             window: AllReadWindow) throws -> (events: [RecordedEvent], next: EventSequence.Cursor?) {
        var damagedAttempts = 0
        while true {
            do {
                if let page = try readAllPageOnce(cursor: cursor, direction: direction, limit: limit, window: window) { return page }
                // A checkpoint released ring records this page needed after it loaded the
                // split cursor: read it again; the released part now comes from the index.
                // Each round needs another checkpoint to finish in that instant, so this ends.
            } catch let error as RingstoreError where error.code == .corruptData && damagedAttempts < 2 {
                // A ring record can be reused once the checkpoint passes it; if that happens
                // between finding and reading it, the index holds it by then: try again.
                damagedAttempts += 1
            }
        }
    }

    /// One page of `$all`, or nil if the ring no longer held where the page
    /// had to start in it (see ``ringEvents(from:below:limit:backwards:)``).
    ///
    /// Why the check: the split cursor is loaded first and the ring's index
    /// read later, under the writer's lock. A checkpoint finishing in between
    /// drops the ring entries below its new cursor — beyond the split cursor
    /// this read loaded — and reading the ring from the old split cursor would
    /// silently skip the events in between. Every event before the ring's start
    /// (the checkpoint, read under the same lock) is in its stream file and the
    /// global index, so the retry finds them there.
    private func readAllPageOnce(cursor: EventSequence.Cursor, direction: ReadDirection, limit: Int,
                                 window: AllReadWindow) throws -> (events: [RecordedEvent], next: EventSequence.Cursor?)? {
        let visible = journal.writer.acknowledged
        let split = splitter.readers.splitPosition.load(ordering: .acquiring)
        allPageCursorsLoaded.reached()
        let events: [RecordedEvent]
        switch direction {
        case .forwards:
            let from: UInt64 = switch cursor {
            case .start: 0
            case .end: journal.lastEventPosition(below: visible) ?? visible
            case .at(let p): p
            }
            // The ring index must still hold everything from where it is read: a
            // checkpoint that completed since `split` was loaded has dropped the
            // records before it, and reading on would skip them. Then read again
            // (the split cursor has moved past them: they come from the files).
            if from < split {
                // Index entries before the split cursor: their events are in stream files.
                let first = try window.indexEntry(atOrAfter: from) ?? globalIndex.firstIndex(atOrAfter: from)
                var entries = try globalIndex.entries(from: first, count: limit)
                if let beyond = entries.firstIndex(where: { $0.position >= split }) { entries.removeSubrange(beyond...) }
                if let last = entries.last { window.noteIndexEntry(first + entries.count - 1, position: last.position) }
                if !entries.isEmpty {
                    events = try window.events(for: entries, backwards: false, split: self.split, indexPath: globalIndex.path)
                } else {
                    let ring = try ringEvents(from: split, below: visible, limit: limit, backwards: false)
                    guard ring.start <= split else { return nil }
                    events = ring.events
                    window.clear()  // everything stored was read: nothing kept is needed again
                }
            } else {
                let ring = try ringEvents(from: from, below: visible, limit: limit, backwards: false)
                guard ring.start <= from else { return nil }
                events = ring.events
                window.clear()
            }
            guard let last = events.last else { return ([], nil) }
            return (events, .at(last.position + 1))
        case .backwards:
            let from: UInt64 = switch cursor {
            case .start: 0
            case .end: visible == 0 ? 0 : visible - 1
            case .at(let p): p
            }
            let upTo = from == .max ? from : from + 1  // entries before this one qualify
            if from < split {
                // Entries at or before `from`: all before the split cursor, so in stream files.
                events = try indexedEventsBackwards(before: upTo, limit: limit, window: window)
            } else {
                let ring = try ringEvents(from: from, below: visible, limit: limit, backwards: true)
                if !ring.events.isEmpty {
                    // The ring holds every event from its start on: these are the latest at or before `from`.
                    events = ring.events
                } else {
                    // No visible event in the ring at or before `from`: the next ones down are
                    // before the ring's start, so checkpointed into stream files. The index
                    // may hold entries beyond them (scanned, not yet in files): never those.
                    events = try indexedEventsBackwards(before: min(upTo, visible, ring.start), limit: limit, window: window)
                }
            }
            guard let last = events.last else { return ([], nil) }
            return (events, last.position == 0 ? nil : .at(last.position - 1))
        }
    }

    /// The last `limit` events whose index entries lie before `position`, newest
    /// first. The caller guarantees they are all in stream files.
    private func indexedEventsBackwards(before position: UInt64, limit: Int, window: AllReadWindow) throws -> [RecordedEvent] {
        let end = try globalIndex.firstIndex(atOrAfter: position)
        let start = max(0, end - limit)
        return try window.events(for: try globalIndex.entries(from: start, count: end - start).reversed(), backwards: true,
                                 split: split, indexPath: globalIndex.path)
    }

    /// Events still in the ring: forwards from `from`, or backwards from `from`
    /// inclusive, below `visible`. `start` is where the ring's events began when
    /// they were looked up (see ``Journal/eventPositions(from:below:limit:backwards:)``):
    /// a forward read from below `start` would miss events, so callers check it.
    private func ringEvents(from: UInt64, below visible: UInt64, limit: Int,
                            backwards: Bool) throws -> (events: [RecordedEvent], start: UInt64) {
        let (positions, start) = journal.eventPositions(from: from, below: visible, limit: limit, backwards: backwards)
        return (try positions.map { try journal.readEvent(at: $0) }, start)
    }

    // MARK: - Status

    /// A snapshot of the journal's cursors and the store's counters.
    public func stats() -> StoreStats {
        let writer = journal.writer
        let (reserved, checkpoint, streamCount, ringEvents) = journal.indexCounts
        let cache = streams.blockCache.counters
        return StoreStats(
            reservedPosition: reserved,
            writtenPosition: writer.written,
            durablePosition: writer.durable,
            splitPosition: splitter.readers.splitPosition.load(ordering: .acquiring),
            checkpointPosition: checkpoint,
            journalCapacity: journal.ring.capacity,
            streamCount: max(streamCount, catalog.count),
            eventsInJournal: ringEvents,
            appendsAcknowledged: writer.acknowledger.appendCount.load(ordering: .relaxed),
            eventsAcknowledged: writer.acknowledger.eventCount.load(ordering: .relaxed),
            flushes: writer.flushCount.load(ordering: .relaxed),
            eventsSplit: splitter.splitEvents.load(ordering: .relaxed),
            checkpoints: splitter.checkpoints,
            openStreamFiles: streams.openFileCount,
            appendsWaitedForSpace: writer.journalFullWaits.load(ordering: .relaxed),
            readerWaits: splitter.readerWaits.count,
            readerWaitP99Milliseconds: splitter.readerWaits.p99Milliseconds,
            blockCacheHits: cache.hits,
            blockCacheMisses: cache.misses,
            blockCacheBytes: cache.bytes,
            checkpointMaxMilliseconds: splitter.checkpointer.durations.maxMilliseconds,
            splitSegmentBytes: split.segments.totalBytes,
            splitSegmentHolds: splitter.segmentHolds.load(ordering: .relaxed),
            bucketFileBytes: split.buckets.totalBytes,
            recoveredEvents: journal.recovery.eventCount,
            recoveryStopReason: journal.recovery.stopReason)
    }
}
