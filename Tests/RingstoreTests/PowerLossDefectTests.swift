import Foundation
import SystemPackage
import Testing
@_spi(PowerLossTesting) @testable import Ringstore

/// What simulated power cuts found in the split and checkpoint path, each
/// built as one exact cut.
@Suite struct PowerLossDefectTests {
    /// A store under a simulation, in `<temporary>/store`.
    final class Scene {
        let directory = TemporaryDirectory("powerlossdefect")
        let root: String
        let simulation: PowerLossSimulation

        init() throws {
            root = directory.child("store")
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
            simulation = try PowerLossSimulation.install(root: root)
        }

        deinit { simulation.uninstall() }

        /// Cuts the power, closes the store that lost it, and returns the folder the cut left.
        func cut(_ store: EventStore, profile: PowerLossProfile) async throws -> String {
            simulation.cut()
            try? await store.close()
            let after = directory.child("after")
            _ = try simulation.materialise(into: after, seed: 1, profile: profile)
            simulation.uninstall()
            return after
        }
    }

    static var relaxedForAnHour: Configuration {
        var configuration = Configuration.testing(durability: .relaxed(flushInterval: .seconds(3600)))
        configuration.readerWait = .seconds(60)  // a loaded machine must not time the reader out
        return configuration
    }

    /// Relaxed mode: a reader makes the splitter write a stream ahead of its main
    /// pass, past the durable cursor. The journal must be durable through what
    /// the stream file receives, before it receives it.
    @Test func aStreamFileNeverHoldsWhatTheJournalDoesNotDurablyHold() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: Self.relaxedForAnHour)
        store.splitter.pause()  // nothing may sync the journal but what the reader's request does
        try await store.append(to: "s", events: [event("w")])
        let x = try await store.append(to: "s", events: [event("x")])
        #expect(store.stats().durablePosition <= x.lastPosition, "nothing flushed yet (the interval is an hour)")
        let reading = Task { try await store.read(stream: "s", from: .end, direction: .backwards, maxCount: 1).collect() }
        try await eventually {  // the request is in before the splitter runs again: served before any checkpoint
            guard store.splitter.readers.hasRequests.load(ordering: .acquiring) else { throw RingstoreError(.ioError, "not yet") }
        }
        store.splitter.resume()
        #expect(try await reading.value.map(\.version) == [1])
        #expect(store.stats().durablePosition > x.lastPosition, "the stream file got event x before the journal made it durable")
        try await store.close()
    }

    /// The same, cut: the stream file's unsynced bytes reach the disk, the
    /// journal's do not. Before, the journal lacked x while the file held it; the
    /// next append got x's version and was hidden behind it ("already in the file").
    @Test func anAppendAfterAPowerCutIsNotHiddenBehindAnEventTheJournalLost() async throws {
        let scene = try Scene()
        let store = try await EventStore.open(at: scene.root, configuration: Self.relaxedForAnHour)
        let w = event("w")
        try await store.append(to: "s", events: [w])
        try await store.flush()
        let x = event("x")
        try await store.append(to: "s", events: [x])
        #expect(try await store.read(stream: "s").collect().map(\.id) == [w.id, x.id])
        let after = try await scene.cut(store, profile: PowerLossProfile(
            writeSurvival: 1, tearing: 0, directorySurvival: 1, keepWritesTo: ["streams/"], loseWritesTo: ["journal.ring"]))

        let reopened = try await EventStore.open(at: after, configuration: Self.relaxedForAnHour)
        let y = event("y")
        let result = try await reopened.append(to: "s", events: [y])
        let stored = try await reopened.read(stream: "s").collect()
        #expect(stored.count == Int(result.firstVersion) + 1 && stored.last?.id == y.id,
                "y was acknowledged at version \(result.firstVersion) but the stream holds \(stored.map { "\($0.version): \(text(of: $0))" })")
        #expect(try await reopened.readAll().collect().map(\.id) == stored.map(\.id))
        try await reopened.close()
    }

    /// A stream file holding, at a version the journal replays, another event
    /// than the journal's (as the defect above left them): the splitter must
    /// report it, not skip the journal's event as "already in the file".
    @Test func theSplitterReportsAFileAheadOfTheJournalInsteadOfSkipping() async throws {
        let dir = TemporaryDirectory()
        let w = event("w")
        let first = try await EventStore.open(at: dir.path, configuration: .testing())
        first.splitter.pause()  // w must not reach a stream file nor leave the ring, however slow the machine
        let written = try await first.append(to: "s", events: [w])
        await first.abandonForTesting()  // w stays in the journal only
        // The file as a run ahead of the journal left it: w, then an x the journal never kept.
        let (folder, name) = StreamNaming.location("s")
        try FileManager.default.createDirectory(atPath: dir.path + "/streams/" + folder, withIntermediateDirectories: true)
        let file = try StreamFile.create(at: dir.path + "/streams/" + folder + "/" + name, stream: "s")
        func recorded(_ data: EventData, version: UInt64, position: UInt64) -> RecordedEvent {
            RecordedEvent(stream: "s", version: version, position: position, id: data.id, type: data.type, data: data.data,
                          metadata: [], contentType: .json, timestampNanoseconds: 1)
        }
        try file.append([recorded(w, version: 0, position: written.firstPosition),
                         recorded(event("x"), version: 1, position: written.lastPosition + 4096)], compress: false)
        file.close()

        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let y = try await store.append(to: "s", events: [event("y")])
        #expect(y.firstVersion == 1)
        _ = try? await store.read(stream: "s").collect()  // asks the splitter to write s
        let failure = try await eventually { () throws -> RingstoreError in
            guard let failure = store.splitter.failure else { throw RingstoreError(.ioError, "not yet") }
            return failure
        }
        #expect(failure.code == .corruptData)
        #expect(failure.message.contains("version 1") && failure.stream == "s", "\(failure)")
        await store.abandonForTesting()
    }

    /// A checkpoint relies on new stream files, their new folders, the catalog
    /// and the global index: their names must be durable before it is written
    /// (an `fdatasync` covers a file's bytes, not its name).
    @Test func newFilesAndFoldersSurviveACutThatDropsEveryUnsyncedDirectoryEntry() async throws {
        let scene = try Scene()
        let store = try await EventStore.open(at: scene.root, configuration: .testing())
        var ids: [String: [UUID]] = [:]
        for i in 0..<3 {
            let events = (0..<5).map { event("e\(i)-\($0)") }
            try await store.append(to: "stream-\(i)", events: events)
            ids["stream-\(i)"] = events.map(\.id)
        }
        try await store.close()  // the final checkpoint moves past every event
        let after = try await scene.cut(store, profile: PowerLossProfile(writeSurvival: 0, tearing: 0, directorySurvival: 0))

        let reopened = try await EventStore.open(at: after, configuration: .testing())
        for (stream, expected) in ids {
            let stored = try await reopened.read(stream: stream).collect()
            #expect(stored.map(\.id) == expected, "\(stream)")
        }
        #expect(try await reopened.readAll().collect().count == 15)
        try await reopened.close()
    }
    /// A stream file created but never written (its header lost) is removed and
    /// made again. When the removal failed (here: after a power cut every change
    /// fails), opening found the same file again, forever, holding the stream's
    /// open lock: the splitter spun and the store's close never returned. It
    /// must fail instead, for the splitter to retry after a pause.
    @Test func aNeverWrittenFileThatCannotBeRemovedFailsTheOpenInsteadOfSpinning() async throws {
        let scene = try Scene()
        let directory = try StreamDirectory(root: FilePath(scene.root), maxOpenFiles: 8)
        let (folder, name) = StreamNaming.location("s")
        try StorageDirectory.create(FilePath(scene.root + "/streams/" + folder))
        let file = try StorageFile.open(FilePath(scene.root + "/streams/" + folder + "/" + name), create: true)
        file.close()
        scene.simulation.cut()
        let outcome = Counter()  // 1: threw, 2: returned
        Task.detached {
            do {
                _ = try directory.handle(for: "s", number: nil, create: true)
                outcome.add(2)
            } catch {
                outcome.add(1)
            }
        }
        try await eventually {
            guard outcome.value != 0 else { throw RingstoreError(.ioError, "still opening") }
        }
        #expect(outcome.value == 1)
    }
    /// The checkpoint and the segment mover sync stream files concurrently. A
    /// sub-folder of `streams/` made while one of them finished its sync was
    /// marked synced by it, although its `fsync` of `streams/` had run before
    /// the folder existed; the next sync of a file in that folder then left the
    /// folder's own entry unsynced, and a power cut took the file with it (its
    /// segment entries already deleted by then). Found by the power-loss rounds:
    /// a stream's events listed in the global index, in neither its file nor the
    /// segments.
    @Test func aFolderMadeWhileAnotherSyncFinishesIsSyncedByTheNextOne() async throws {
        let scene = try Scene()
        let directory = try StreamDirectory(root: FilePath(scene.root), maxOpenFiles: 8)
        try StorageDirectory.sync(FilePath(scene.root))  // `streams/` itself, as the store's open does
        let first = "a"
        let second = try #require((0..<1000).lazy.map { "b\($0)" }.first {
            StreamNaming.location($0).folder != StreamNaming.location(first).folder
        })
        @Sendable func recorded(_ stream: String) -> [RecordedEvent] {
            [RecordedEvent(stream: stream, version: 0, position: 100, id: UUID(), type: "T", data: Array("x".utf8), metadata: [],
                           contentType: .json, timestampNanoseconds: 1)]
        }
        let a = try #require(try directory.handle(for: first, number: nil, create: true))
        try a.withFile { try $0.append(recorded(first), compress: true) }
        directory.foldersSyncedHook.install { [directory] in
            directory.foldersSyncedHook.remove()
            // Another thread's first file in a new folder, made as this sync ends.
            let b = try! directory.handle(for: second, number: nil, create: true)!
            try! b.withFile { try $0.append(recorded(second), compress: true) }
        }
        try directory.syncAll(dirty: [first])
        try directory.syncAll(dirty: [second])  // its caller relies on the file from here on
        scene.simulation.cut()
        let after = scene.directory.child("after")
        _ = try scene.simulation.materialise(into: after, seed: 1,
                                             profile: PowerLossProfile(writeSurvival: 0, tearing: 0, directorySurvival: 0))
        scene.simulation.uninstall()
        for stream in [first, second] {
            let path = after + "/" + StreamNaming.relativePath(stream).string
            #expect(FileManager.default.fileExists(atPath: path), "\(stream)'s file was lost")
            if FileManager.default.fileExists(atPath: path) {
                let file = try StreamFile.open(at: path, replayFrom: 1 << 40, expecting: stream)
                #expect(file.nextVersion == 1)
                file.close()
            }
        }
    }
}
