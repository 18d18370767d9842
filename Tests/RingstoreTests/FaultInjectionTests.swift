import Foundation
import RingstoreCrashTesting
import SystemPackage
import Synchronization
import Testing
@_spi(FaultTesting) @testable import Ringstore

/// Installs a fault for the duration of `body` (rules match by path, so each
/// test's faults touch only its own temporary directory).
@discardableResult
func withFault<R>(_ operation: FaultInjection.Operation, on path: String, _ effect: FaultInjection.Effect, count: Int? = nil,
                  _ body: (FaultInjection.Token) async throws -> R) async rethrows -> R {
    let token = FaultInjection.install(.init(operation: operation, pathContains: path, effect: effect, count: count))
    defer { FaultInjection.remove(token) }
    return try await body(token)
}

@Suite struct FaultInjectionTests {
    @Test func injectedFaultsMatchByPathAndCountDown() throws {
        let dir = TemporaryDirectory()
        let file = try StorageFile.open(FilePath(dir.child("a")), create: true)
        defer { file.close() }
        let token = FaultInjection.install(.init(operation: .flush, pathContains: dir.child("a"), effect: .fail(.noSpace), count: 2))
        let other = try StorageFile.open(FilePath(dir.child("b")), create: true)
        defer { other.close() }
        try other.syncData()  // another path: untouched
        for _ in 0..<2 {
            #expect(throws: RingstoreError.self) { try file.syncData() }
        }
        try file.syncData()  // used up
        #expect(FaultInjection.hits(token) == 0, "a rule with a count removes itself once used up")
        do {
            try file.syncData()
        } catch {
            Issue.record("unexpected \(error)")
        }
        let failing = FaultInjection.install(.init(operation: .write, pathContains: dir.child("a"), effect: .fail(.ioError), count: nil))
        let error = #expect(throws: RingstoreError.self) { try [1, 2, 3].withUnsafeBytes { try file.write($0, at: 0) } }
        #expect(error?.code == .ioError)
        #expect(error?.path == dir.child("a"))
        #expect(FaultInjection.hits(failing) == 1)
        FaultInjection.remove(failing)
    }

    @Test func failedJournalFlushFailsItsAppendsAndTheStoreRecoversWithoutRestart() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "a", expectedVersion: .noStream, events: [event("1")])
        store.splitter.pause()  // no checkpoint header write may take the fault
        let failedEvents = [event("2"), event("3")]
        await withFault(.flush, on: dir.child("journal.ring"), .fail(.ioError), count: 1) { _ in
            let error = await ringstoreError {
                try await store.append(to: "a", expectedVersion: .exact(0), events: failedEvents)
            }
            #expect(error?.code == .ioError)
            #expect(error?.message.contains("may or may not be stored") == true, "\(String(describing: error))")
        }
        // The fault is gone: appends work again, and the failed append's records were written
        // again before the flush that made them durable.
        let later = try await store.append(to: "b", events: [event("4")])
        #expect(later.firstVersion == 0)
        #expect(store.journal.writer.ringSync.rewriteCount.load(ordering: .relaxed) >= 1)
        // A retry of the failed append is recognised: same versions, nothing written twice.
        let retried = try await store.append(to: "a", expectedVersion: .exact(0), events: failedEvents)
        #expect(retried.firstVersion == 1 && retried.lastVersion == 2)
        store.splitter.resume()
        try await store.close()

        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        let a = try await reopened.read(stream: "a").collect()
        #expect(a.map(\.version) == [0, 1, 2])
        #expect(a.dropFirst().map(\.id) == failedEvents.map(\.id))
        #expect(try await reopened.read(stream: "b").collect().count == 1)
        try await reopened.close()
    }

    @Test(.timeLimit(.minutes(2)), arguments: [Errno.ioError, Errno.noSpace])
    func persistentJournalFaultFailsEveryAppendUntilItClears(code: Errno) async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        var acknowledged: [UUID] = []
        for i in 0..<5 {
            let e = event("\(i)")
            try await store.append(to: "s", events: [e])
            acknowledged.append(e.id)
        }
        store.splitter.pause()
        await withFault(.flush, on: dir.child("journal.ring"), .fail(code)) { token in
            // Each append fails with the flush that covers it: held until a flush
            // succeeded, it would wait for good (the time limit catches that).
            for i in 0..<3 {
                let error = await ringstoreError { try await store.append(to: "s", events: [event("failing \(i)")]) }
                #expect(error?.code == .ioError)
            }
            let flushError = await ringstoreError { try await store.flush() }
            #expect(flushError?.code == .ioError)
            #expect(FaultInjection.hits(token) >= 3)
        }
        let e = event("after")
        try await eventually { try await store.append(to: "s", events: [e]) }
        acknowledged.append(e.id)
        store.splitter.resume()
        try await store.close()

        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        let stored = try await reopened.read(stream: "s").collect()
        #expect(Set(acknowledged).isSubset(of: Set(stored.map(\.id))), "nothing acknowledged is lost")
        #expect(stored.map(\.version) == Array(0..<UInt64(stored.count)), "versions stay contiguous")
        try await reopened.close()
    }

    /// If the unflushed records cannot be read back intact after a failed flush (the
    /// kernel dropped the page and what is there now is something else), nothing
    /// after them can be made durable: the store fails into `.storeFailed` rather
    /// than acknowledge appends that recovery would cut off.
    @Test func unflushedRecordsLostAfterAFailedFlushStopTheStore() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let kept = event("kept")
        try await store.append(to: "a", events: [kept])
        store.splitter.pause()
        let journalPath = dir.child("journal.ring")
        let lostAt = store.stats().durablePosition
        await withFault(.flush, on: journalPath, .fail(.ioError)) { _ in
            let error = await ringstoreError { try await store.append(to: "a", events: [event("lost")]) }
            #expect(error?.code == .ioError)
            // Overwrite the unflushed record, as if the page had been dropped and reread from disk
            // (again if a rewrite the flusher had in flight put it back).
            let ring = try! StorageFile.open(FilePath(journalPath))
            let offset = RingFile.headerAreaSize + lostAt % store.stats().journalCapacity
            let garbage = [UInt8](repeating: 0xAB, count: 64)
            var current = [UInt8](repeating: 0, count: 64)
            let deadline = ContinuousClock.now + generousWait
            repeat {
                try! garbage.withUnsafeBytes { try ring.write($0, at: offset) }
                try? await Task.sleep(for: .milliseconds(30))
                _ = try! current.withUnsafeMutableBytes { try ring.read(into: $0, at: offset) }
            } while current != garbage && store.journal.writer.failure == nil && ContinuousClock.now < deadline
            #expect(current == garbage || store.journal.writer.failure != nil, "the flusher kept putting the record back")
            ring.close()
        }
        // The flusher's next attempt finds the record damaged: this append (waiting for it) fails.
        let after = await ringstoreError { try await store.append(to: "b", events: [event("after")]) }
        #expect(after?.code == .storeFailed)
        #expect(await ringstoreError { try await store.append(to: "b", events: [event("later")]) }?.code == .storeFailed)
        #expect(after?.detailedDescription().contains("could not be read back intact") == true, "\(String(describing: after?.detailedDescription()))")
        #expect(store.stats().durablePosition == lostAt, "nothing after the lost record counts as durable")
        try? await store.close()

        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await reopened.read(stream: "a").collect().map(\.id) == [kept.id], "what was acknowledged survives")
        try await reopened.close()
    }

    @Test func failedJournalWriteIsWrittenAgainBeforeAnythingNewer() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        store.splitter.pause()
        let failed = event("lost?")
        await withFault(.write, on: dir.child("journal.ring"), .fail(.noSpace), count: 1) { _ in
            let error = await ringstoreError { try await store.append(to: "w", events: [failed]) }
            #expect(error?.code == .ioError)
        }
        let next = event("next")
        try await eventually { try await store.append(to: "w", events: [next]) }
        store.splitter.resume()
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        let stored = try await reopened.read(stream: "w").collect()
        // The failed append's records were written on the retry, before the next append's.
        #expect(stored.map(\.id) == [failed.id, next.id])
        try await reopened.close()
    }

    /// The splitter's checkpoint flush fails for as long as the fault lasts: the
    /// checkpoint stays put, the ring fills, appends get `.journalFull` naming the
    /// splitter's failure; once the fault clears the same store carries on.
    @Test(arguments: ["/split/", "/global.index", "/streams.catalog"])
    func failedCheckpointFlushIsRetriedAndNeverSkipped(fragment: String) async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 256 << 10))
        var acknowledged: [String: [UUID]] = [:]
        let payload = String(repeating: "x", count: 1000)
        // Appends wait for space as long as it takes until the failure is reported,
        // then briefly: every journal-full error comes after it, and must name it.
        let watch = DiskFullWatch.start(store, thenWait: .milliseconds(200))
        defer { watch.cancel() }
        let sawFull = try await withFault(.flush, on: dir.path + fragment, .fail(.ioError)) { _ -> Bool in
            for i in 0..<2_000 {
                // 64 streams: none gathers the 16 KiB that sends a stream straight to its
                // own file (the ring holds about 250 of these events), so every checkpoint
                // writes the split segments. With 4 streams a slow splitter (a loaded
                // machine, ThreadSanitizer) could make its first checkpoint from direct
                // writes alone, durable without the segments, and rightly move past 0.
                let stream = "s-\(i % 64)"
                let e = event(payload + "\(i)")
                do {
                    try await store.append(to: stream, events: [e])
                    acknowledged[stream, default: []].append(e.id)
                } catch let error as RingstoreError where error.code == .journalFull {
                    #expect(error.message.contains("splitter reports"), "\(error.message)")
                    #expect(error.description.contains("Input/output error"), "the cause is named: \(error.detailedDescription())")
                    return true
                }
            }
            return false
        }
        #expect(sawFull, "backpressure stops appends while checkpoints cannot be made durable")
        #expect(store.stats().checkpointPosition == 0, "the checkpoint never passed data that was not durable")
        #expect(store.splitter.failure != nil)

        // The fault has cleared: the same store catches up and takes appends again.
        store.setJournalFullWait(generousWait)
        let e = event("after")
        try await eventually { try await store.append(to: "s-0", events: [e]) }
        acknowledged["s-0", default: []].append(e.id)
        _ = try await eventually { () async throws -> Bool in
            guard store.stats().checkpointPosition > 0 else { throw CancellationError() }
            return true
        }
        for (stream, ids) in acknowledged {
            let stored = try await store.read(stream: stream).collect().map(\.id)
            #expect(Set(ids).isSubset(of: Set(stored)), "stream \(stream)")
        }
        try await store.close()

        let reopened = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 256 << 10))
        let all = try await reopened.readAll().collect()
        #expect(Set(acknowledged.values.joined()).isSubset(of: Set(all.map(\.id))), "nothing acknowledged is lost")
        #expect(Set(all.map(\.id)).count == all.count, "nothing is stored twice")
        for (stream, _) in acknowledged {
            let versions = try await reopened.read(stream: stream).collect().map(\.version)
            #expect(versions == Array(0..<UInt64(versions.count)), "stream \(stream)")
        }
        try await reopened.close()
    }

    /// A close that comes while the checkpointer retries a job that failed
    /// before, and is succeeding now, waits for that attempt: it used to take
    /// the earlier attempt's failure, still reported until the job finished,
    /// for the final checkpoint's, and threw it (the store then replayed the
    /// journal at the next open for nothing).
    @Test func aCloseDuringASucceedingRetryClosesCleanly() async throws {
        let dir = TemporaryDirectory()
        let store = try await storeHoldingFourLargeStreams(at: dir)
        let slow = FaultInjection.install(.init(operation: .flush, pathContains: dir.child("streams/"), effect: .delay(.milliseconds(300)), count: nil))
        defer { FaultInjection.remove(slow) }
        let failing = FaultInjection.install(.init(operation: .flush, pathContains: dir.child("streams/"), effect: .fail(.ioError), count: nil))
        store.splitter.resume()
        try await waitUntil("a checkpoint attempt to fail") { store.splitter.failure != nil }
        FaultInjection.remove(failing)
        let before = FaultInjection.hits(slow)
        try await waitUntil("a retry to be under way") { FaultInjection.hits(slow) > before }
        #expect(store.splitter.failure != nil, "the earlier attempt's failure is still reported while the retry runs")
        try await store.close()  // threw that failure before the fix
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 4 << 20))
        #expect(reopened.stats().recoveredEvents == 0, "the store was closed cleanly")
        try await reopened.close()
    }

    /// A splitter whose stream-file writes fail (a full disk) reports the failure
    /// for as long as they do, so that a journal-full error raised at any moment
    /// names it. (It was cleared by any pass of the splitter that threw nothing,
    /// such as a scan of new appends, while the held-back records still could not
    /// be written: an append refused in such a gap said only "stream files are not
    /// keeping up".) Once the writes work again, the failure is cleared.
    @Test func aSplitterFailureStaysReportedWhileItsStreamWritesFail() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 4 << 20))
        let big = (0..<100).map { _ in EventData(type: "T", data: [UInt8](repeating: 1, count: 1000), contentType: .binary) }
        try await withFault(.write, on: dir.child("streams/"), .fail(.noSpace)) { _ in
            // A block's worth for one stream: the splitter writes it at once, and fails.
            try await store.append(to: "big", events: big)
            try await waitUntil("the splitter to report the failed write") { store.splitter.failure != nil }
            for i in 0..<5 {
                // Scanning a new append succeeds (the global index and the catalog take
                // writes); the held-back records still cannot be written.
                let scanned = store.stats().eventsSplit
                try await store.append(to: "small-\(i)", events: [event("\(i)")])
                try await waitUntil("the splitter to scan the append") { store.stats().eventsSplit > scanned }
                for _ in 0..<10 {
                    #expect(store.splitter.failure?.description.contains("No space left on device") == true, "after append \(i)")
                    try await Task.sleep(for: .milliseconds(10))  // looks over a while, not to wait for anything
                }
            }
        }
        // The writes work again: the held-back records are written, the failure is gone.
        try await waitUntil("the splitter to recover") { store.splitter.failure == nil }
        #expect(try await store.read(stream: "big").collect().map(\.id) == big.map(\.id))
        try await store.close()
    }

    /// A failed catalog write must not lose the names registered in it (the global
    /// index refers to streams by number; a lost name breaks `$all` after a reopen).
    @Test func failedCatalogWriteIsWrittenAgain() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await withFault(.write, on: dir.child("streams.catalog"), .fail(.noSpace), count: 1) { _ in
            try await store.append(to: "named", events: [event("1")])
            _ = try await eventually { () async throws -> Bool in
                guard store.stats().eventsSplit >= 1 else { throw CancellationError() }
                return true
            }
        }
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        let all = try await reopened.readAll().collect()
        #expect(all.map(\.stream) == ["named"])
        try await reopened.close()
    }

    /// A failed index write must leave the stream file as it was, so that the
    /// retry writes the blocks and their index entries at the same offsets
    /// (before, the index kept a hole that misplaced reads after a reopen).
    /// `pastThreshold` 4: the index exists; -1: the failed append is the one that creates it.
    @Test(arguments: [4, -1])
    func failedStreamIndexWriteLeavesTheFileAsItWas(pastThreshold: Int) throws {
        let blocksBefore = StreamFile.indexThreshold(for: "s") + pastThreshold
        let dir = TemporaryDirectory()
        let path = dir.child("s.stream")
        let all = StreamFileTests().events(0..<UInt64(blocksBefore + 3))
        let file = try StreamFile.create(at: path, stream: "s")
        for v in 0..<blocksBefore { try file.append([all[v]], compress: true) }  // one block per append
        let failing = FaultInjection.install(.init(operation: .write, pathContains: path + ".idx", effect: .fail(.noSpace), count: 1))
        defer { FaultInjection.remove(failing) }
        let next = Array(all[blocksBefore...].prefix(1))
        #expect(throws: RingstoreError.self) { try file.append(next, compress: true) }
        #expect(file.nextVersion == UInt64(blocksBefore), "nothing counts as stored")
        try file.append(next, compress: true)
        try file.append(Array(all[(blocksBefore + 1)...]), compress: true)
        #expect(try file.read(from: 0, direction: .forwards, maxCount: 100).map(\.id) == all.map(\.id))
        file.close()
        let reopened = try StreamFile.open(at: path, replayFrom: 0)
        defer { reopened.close() }
        #expect(try reopened.read(from: 0, direction: .forwards, maxCount: 100).map(\.id) == all.map(\.id))
        #expect(try reopened.read(from: UInt64(blocksBefore), direction: .forwards, maxCount: 1).map(\.version) == [UInt64(blocksBefore)])
    }

    /// After a failed flush, the next sync of a stream file, the global index or the
    /// catalog writes the unsynced bytes again before flushing (a failed `fdatasync`
    /// may have left them clean in the page cache but not on disk); syncs that follow
    /// a good one write nothing.
    @Test(arguments: ["stream file", "global index", "catalog"])
    func syncAfterAFailedSyncWritesTheUnsyncedBytesAgain(kind: String) throws {
        let dir = TemporaryDirectory()
        let path: String
        let addSome: (Int) throws -> Void
        let sync: () throws -> Void
        switch kind {
        case "stream file":
            path = dir.child("s.stream")
            let file = try StreamFile.create(at: path, stream: "s")
            let events = StreamFileTests().events(0..<30)
            addSome = { round in try file.append(Array(events[(round * 10)..<(round * 10 + 10)]), compress: true) }
            sync = { try file.sync() }
        case "global index":
            path = dir.child(GlobalIndex.fileName)
            let index = try GlobalIndex(directory: FilePath(dir.path))
            addSome = { round in
                try index.append((0..<10).map { GlobalIndex.Entry(position: UInt64(round * 1000 + $0 * 64), version: UInt64($0), stream: 0) })
            }
            sync = { try index.sync() }
        default:
            path = dir.child(StreamCatalog.fileName)
            let catalog = try StreamCatalog(directory: FilePath(dir.path))
            addSome = { round in
                for i in 0..<10 { _ = catalog.register("stream-\(round)-\(i)") }
                try catalog.write()
            }
            sync = { try catalog.sync() }
        }
        try addSome(0)
        try sync()
        try addSome(1)
        let failing = FaultInjection.install(.init(operation: .flush, pathContains: path, effect: .fail(.ioError), count: 1))
        #expect(throws: RingstoreError.self) { try sync() }
        FaultInjection.remove(failing)
        let writes = FaultInjection.install(.init(operation: .write, pathContains: path, effect: .delay(.zero), count: nil))
        defer { FaultInjection.remove(writes) }
        try sync()
        #expect(FaultInjection.hits(writes) >= 1, "the unsynced bytes were written again")
        let afterRewrite = FaultInjection.hits(writes)
        try addSome(2)
        let appended = FaultInjection.hits(writes)
        try sync()
        #expect(FaultInjection.hits(writes) == appended, "a sync after a good one writes nothing again")
        #expect(afterRewrite <= appended)
    }

    /// The appending thread is held right after staging until the acknowledger
    /// has counted the append, so the acknowledgement comes before the task
    /// reaches its `await` (rare without the hold: the thread must be preempted
    /// for a whole flush). Each append still returns its own result, and reads
    /// right after it (of a stream already split, so the task does not suspend
    /// in between) see what they should; the ThreadSanitizer run checks this
    /// path too (``SanitizerAnnotations``).
    @Test(arguments: [Configuration.Durability.durable, .relaxed(flushInterval: .seconds(60))])
    func anAppendAcknowledgedBeforeItsTaskWaitsReturnsItsResult(durability: Configuration.Durability) async throws {
        final class Progress: Sendable {
            let expected = Atomic<UInt64>(0)
            let acknowledgedFirst = Atomic<Int>(0)
        }
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing(durability: durability))
        try await store.append(to: "settled", events: [event("s")])
        #expect(try await store.read(stream: "settled").collect().map(text) == ["{\"v\":\"s\"}"])
        let writer = store.journal.writer
        let progress = Progress()
        writer.appendStaged.install {
            // Waits for the acknowledger's count (it counts before it resumes), not for a time.
            let deadline = ContinuousClock.now + generousWait
            while writer.acknowledger.appendCount.load(ordering: .acquiring) < progress.expected.load(ordering: .acquiring) {
                if ContinuousClock.now >= deadline { return }
                usleep(100)
            }
            progress.acknowledgedFirst.add(1, ordering: .relaxed)
        }
        defer { writer.appendStaged.remove() }
        let rounds = 20
        for i in 0..<rounds {
            progress.expected.store(writer.acknowledger.appendCount.load(ordering: .acquiring) + 1, ordering: .releasing)
            let appended = try await store.append(to: "early", events: [event("\(i)")])
            #expect(appended.firstVersion == UInt64(i) && appended.lastVersion == UInt64(i))
            #expect(try await store.read(stream: "settled").collect().map(text) == ["{\"v\":\"s\"}"])
        }
        writer.appendStaged.remove()
        #expect(progress.acknowledgedFirst.load(ordering: .relaxed) == rounds, "every append was acknowledged before its task awaited")
        #expect(try await store.read(stream: "early").collect().map(text) == (0..<rounds).map { "{\"v\":\"\($0)\"}" })
        try await store.close()
    }

    @Test func slowFlushesDelayAppendsButLoseNothing() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let (single, ids) = try await withFault(.flush, on: dir.child("journal.ring"), .delay(.milliseconds(250))) { _ in
            let start = ContinuousClock.now
            let first = event("first")
            try await store.append(to: "slow", events: [first])
            let single = ContinuousClock.now - start
            // Concurrent appends share flushes (group commit), so 16 of them take far fewer than 16 flushes.
            let flushesBefore = store.stats().flushes
            let ids = try await withThrowingTaskGroup(of: UUID.self) { group in
                for i in 0..<16 {
                    group.addTask {
                        let e = event("\(i)")
                        try await store.append(to: "slow-\(i)", events: [e])
                        return e.id
                    }
                }
                return try await group.reduce(into: [first.id]) { $0.append($1) }
            }
            let flushes = store.stats().flushes - flushesBefore
            #expect(flushes < 12, "\(flushes) flushes for 16 concurrent appends")
            return (single, ids)
        }
        #expect(single >= .milliseconds(250), "latency rises with the flush")
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(Set(try await reopened.readAll().collect().map(\.id)) == Set(ids))
        try await reopened.close()
    }

    @Test func failedOpenAndRenameGiveClearErrors() async throws {
        let dir = TemporaryDirectory()
        let renameError = await withFault(.rename, on: dir.path, .fail(.noSpace), count: 1) { _ in
            await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing()) }
        }
        #expect(renameError?.code == .ioError)
        #expect(renameError?.description.contains("rename") == true, "\(String(describing: renameError))")
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "x", events: [event("1")])
        try await store.close()

        let openError = await withFault(.open, on: dir.path, .fail(.ioError), count: 1) { _ in
            await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing()) }
        }
        #expect(openError?.code == .ioError)
        #expect(openError?.path?.hasPrefix(dir.path) == true)
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await reopened.read(stream: "x").collect().count == 1)
        try await reopened.close()
    }
}
