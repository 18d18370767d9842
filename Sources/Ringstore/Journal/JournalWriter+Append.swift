#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Synchronization

/// Step 1 of an append (see ``JournalWriter``): one lock section that checks
/// the expected version, reserves ring space, encodes the records into the
/// staging buffer and registers the continuation; and what an append does when
/// that section sends it back (a stream to load, a retry to confirm, a full ring).
extension JournalWriter {
    /// One validated append, ready to encode.
    struct PreparedAppend: Sendable {
        var stream: String
        var expected: ExpectedVersion
        var events: [EventData]
        /// Encoded record length of all events (each one's is ``recordLength(of:)``).
        var totalLength: Int
        /// Set when this append is a tombstone: it hard-deletes that stream.
        var tombstone: TombstoneTarget? = nil

        /// The encoded record length of `event` in this append: arithmetic on
        /// counts, done again where it is needed rather than kept in an array
        /// (one allocation less per append).
        func recordLength(of event: EventData) -> Int {
            JournalRecord.eventLength(streamCount: stream.utf8.count, typeCount: event.type.utf8.count,
                                      metadataCount: event.metadata.count, dataCount: event.data.count)
        }
    }

    /// Adds a stream whose records have all left the ring (or that has none) to
    /// the index. `nextVersion` comes from its stream file: one past
    /// ``StreamState/versionLimit`` is damage, reported rather than stored.
    func introduce(_ stream: String, nextVersion: UInt64, deleted: Bool = false) throws {
        guard nextVersion <= StreamState.versionLimit else {
            throw RingstoreError(.corruptData, "stream \"\(stream)\" is stored with \(nextVersion) events, more than a stream can have (\(StreamState.versionLimit))",
                                 stream: stream)
        }
        state.withLock { s in
            _ = s.index.streams.slot(for: stream, inserting: StreamState(nextVersion: nextVersion, deleted: deleted))
        }
    }

    /// Appends; `whyFull` says why the ring is not draining, if anything is known
    /// (the splitter's or checkpointer's failure), for the journal-full error.
    func append(_ append: PreparedAppend, whyFull: () -> RingstoreError? = { nil }) async throws -> AppendResult {
        var waitingSince: Int64?
        while true {
            // Read before looking at the ring, once waiting: space freed from here on ends the wait below.
            let spaceGeneration = waitingSince == nil ? 0 : ringSpace.generation
            let outcome = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Outcome, any Error>) in
                stage(append, continuation: continuation)
            }
            switch outcome {
            case .appended(let result):
                return result
            case .unknownStream:
                if let stored = stored.storedName(equivalentTo: append.stream), !NameRules.sameStream(stored, append.stream) {
                    throw NameRules.equivalentNameError(append.stream, stored: stored)
                }
                try introduce(append.stream, nextVersion: try stored.storedNextVersion(of: append.stream),
                              deleted: try deletions.isDeleted(append.stream))
            case .storedRetry(let check):
                if let result = try confirmStoredRetry(append, check) { return result }
                throw check.otherwise
            case .journalFull(let needed):
                let now = monotonicNanoseconds()
                guard let since = waitingSince else {
                    // Looks once more, having read the generation: nothing on the common path
                    // (an append that finds space) pays for the waiters' bookkeeping.
                    waitingSince = now
                    journalFullWaits.add(1, ordering: .relaxed)
                    continue
                }
                let wait = journalFullWaitNanoseconds.load(ordering: .relaxed)
                if now - since >= wait { throw journalFullError(needed: needed, waited: wait, cause: whyFull()) }
                try await waitForRingSpace(since: spaceGeneration)
            }
        }
    }

    /// Waits until a checkpoint frees ring space or the waiters' next tick
    /// (``RingSpaceWaiters``). Not inlined into `append` on purpose: an await
    /// inlined there put its state in `append`'s frame, and every append paid
    /// task allocations for it (about 450 instructions with the `Task.sleep`
    /// this replaced) though almost none ever waits. Throws if the task is cancelled.
    @inline(never)
    private func waitForRingSpace(since generation: UInt64) async throws {
        await ringSpace.wait(since: generation)
        try Task.checkCancellation()
    }

    /// The first append's result if the stream file holds this append's IDs
    /// from `check.firstVersion` up to where the ring's part (already compared) begins.
    private func confirmStoredRetry(_ append: PreparedAppend, _ check: StoredRetry) throws -> AppendResult? {
        let first = check.firstVersion
        let storedCount = Int(check.ringFirstVersion - first)
        let stored = try self.stored.storedEvents(of: append.stream, from: first, count: storedCount)
        guard stored.count == storedCount, stored.first?.version == first,
              stored.lazy.map(\.id).elementsEqual(append.events[..<storedCount].lazy.map(\.id))
        else { return nil }
        return AppendResult(firstVersion: first, lastVersion: first + UInt64(append.events.count - 1),
                            firstPosition: stored[0].position,
                            lastPosition: check.lastPositionInRing ?? stored[storedCount - 1].position)
    }

    /// The error of an append that waited `waited` nanoseconds for ring space.
    /// With a `cause` (the splitter cannot write the stream files, e.g. the disk is
    /// full) the message names it, since no longer wait or larger ring would help.
    private func journalFullError(needed: Int, waited: Int64, cause: RingstoreError?) -> RingstoreError {
        let (reserved, checkpoint) = state.withLock { ($0.reserved, $0.checkpoint) }
        let used = reserved - checkpoint
        let seconds = Double(waited) / 1e9
        let why = cause.map { "the checkpoint cannot move, the splitter reports: \($0.message)" }
            ?? "stream files are not keeping up — raise journalFullWait or the journal capacity"
        return RingstoreError(
            .journalFull,
            "journal full: waited \(seconds) s for \(needed) bytes of ring space (\(used) of \(ring.capacity) bytes in use, checkpoint at \(checkpoint)); \(why)",
            path: ring.file.path.string, cause: cause)
    }

    /// The single locked section of an append. Resumes `continuation` at once
    /// unless the append was staged (or is a retry of one not yet acknowledged),
    /// in which case it is resumed once acknowledged (the flusher hands it to the ``Acknowledger``).
    private func stage(_ append: PreparedAppend, continuation: UnsafeContinuation<Outcome, any Error>) {
        enum Next { case wakeFlusher(Bool), resume(Result<Outcome, any Error>) }
        // Hashed before the lock: the table (and its seed) is the one recovery built, never replaced.
        let streamHash = StreamTable.hash(append.stream, seed: streamHashSeed)
        let next: Next = state.withLock { s in
            // The section's cache misses (the stream's slot, the idempotency window's
            // slots, the stream's ring entries) are asked for first, so that they
            // overlap instead of following one another.
            s.index.streams.prefetchSlot(hashed: streamHash)
            if let first = append.events.first { s.window.prefetch(for: first.id) }
            assert(s.index.streams.hashSeed == streamHashSeed, "the writer's stream table was replaced")
            if let failure = s.failure { return .resume(.failure(failure)) }
            if s.closing { return .resume(.failure(RingstoreError(.storeClosed, "the store is closed", stream: append.stream))) }

            // One hash lookup; the entry is then read and updated in place (copying it
            // out would make the next append to its arrays copy them whole).
            guard let slot = s.index.streams.slot(of: append.stream, hashed: streamHash) else {
                return .resume(.success(.unknownStream))
            }
            s.index.streams.prefetchEntries(at: slot)
            // The table's `String` keys equate Unicode-equivalent names; streams are their bytes.
            let key = s.index.streams.name(at: slot)
            guard NameRules.sameStream(key, append.stream) else {
                return .resume(.failure(NameRules.equivalentNameError(append.stream, stored: key)))
            }
            if s.index.streams[at: slot].deleted { return .resume(.failure(deletedError(append.stream))) }
            let current = s.index.streams[at: slot].currentVersion
            switch checkExpectedVersion(append, current: current, state: &s) {
            case .proceed:
                break
            case .duplicate(let result):
                if result.lastPosition < acknowledged { return .resume(.success(.appended(result))) }
                s.waiters.append(Waiter(lastPosition: result.lastPosition, result: result, continuation: continuation))
                return .wakeFlusher(Self.wakesFlusher(&s))
            case .reject(let error):
                return .resume(.failure(error))
            case .storedRetry(let check):
                return .resume(.success(.storedRetry(check)))
            }

            let firstVersion = current.map { $0 + 1 } ?? 0
            // Versions come from disk (recovery, stream files): a stream there may have no room left.
            guard UInt64(append.events.count) <= StreamState.versionLimit - firstVersion else {
                return .resume(.failure(RingstoreError(
                    .corruptData,
                    "stream \"\(append.stream)\" is at version \(current.map { "\($0)" } ?? "none"): \(append.events.count) more events would pass the largest version a stream can have (\(StreamState.versionLimit - 1)); its stored versions cannot be right",
                    stream: append.stream)))
            }

            // Space: a record never straddles the ring's end, so pad the tail if needed.
            let start = s.reserved
            let tail = ring.bytesToEnd(from: start)
            let padding = tail < UInt64(append.totalLength) ? tail : 0
            guard start + padding + UInt64(append.totalLength) <= s.checkpoint + ring.capacity else {
                return .resume(.success(.journalFull(needed: Int(padding) + append.totalLength)))
            }
            if let tombstone = append.tombstone {
                // The deleted stream and this metadata stream close in the same lock
                // section that stages the tombstone: no append can land after it.
                if let error = markDeleted(tombstone, state: &s) { return .resume(.failure(error)) }
                s.index.streams[at: slot].deleted = true
            }
            if padding >= UInt64(JournalRecord.paddingSize) {
                s.staging.reserve(JournalRecord.paddingSize, at: start) { header in
                    JournalRecord.encodePadding(into: header.baseAddress!, length: Int(padding), position: start, epoch: epoch)
                }
            }
            let timestamp = wallClockNanoseconds()
            var position = start + padding
            let firstPosition = position
            var lastPosition = position
            let lastIndex = append.events.count - 1
            // Each event goes into the index as it is encoded: no arrays of positions
            // and IDs to build and free per append.
            // Not for one event (the append below grows the array as needed): the
            // entries' first touch then comes after the record is encoded, which
            // gives the prefetch above time to bring their cache line in.
            if append.events.count > 1 { s.index.reserve(append.events.count, at: slot) }
            var streamName = append.stream
            // The events are read through a buffer pointer: `append.events[i].data.withUnsafeBytes`
            // inside the nested closures copied each byte array first (a retain and a
            // release through the generic value witnesses, about 200 instructions an event).
            streamName.withUTF8 { streamBytes in
                append.events.withUnsafeBufferPointer { events in
                    for i in events.indices {
                        let length = append.recordLength(of: events[i])
                        let fields = JournalRecord.EventFields(
                            position: position, epoch: epoch, version: firstVersion + UInt64(i), id: events[i].id,
                            timestampNanoseconds: timestamp, json: events[i].contentType == .json, endOfAppend: i == lastIndex)
                        var type = events[i].type
                        s.staging.reserve(length, at: position) { record in
                            type.withUTF8 { typeBytes in
                                events[i].metadata.withUnsafeBytes { metadata in
                                    events[i].data.withUnsafeBytes { data in
                                        JournalRecord.encodeEvent(
                                            into: record.baseAddress!, length: length, fields: fields,
                                            stream: UnsafeRawBufferPointer(streamBytes),
                                            type: UnsafeRawBufferPointer(typeBytes),
                                            metadata: metadata, data: data)
                                    }
                                }
                            }
                        }
                        s.index.record(at: slot, position: position, id: events[i].id)
                        lastPosition = position
                        position += UInt64(length)
                    }
                }
            }
            s.reserved = position
            let result = AppendResult(
                firstVersion: firstVersion, lastVersion: firstVersion + UInt64(lastIndex),
                firstPosition: firstPosition, lastPosition: lastPosition)
            // The index's copy of the name: the caller's may be a heap object of its own.
            s.window.remember(append.events[0].id, .init(stream: s.index.streams.name(at: slot), firstVersion: firstVersion, count: append.events.count))
            s.waiters.append(Waiter(lastPosition: result.lastPosition, result: result, continuation: continuation))
            return .wakeFlusher(Self.wakesFlusher(&s))
        }
        switch next {
        case .wakeFlusher(let wasIdle):
            if wasIdle { wake.signal() }
            appendStaged.reached()
        case .resume(let result):
            continuation.resume(with: result)
        }
    }
}
