import Foundation
import SystemPackage
import Testing
@_spi(PowerLossTesting) @testable import Ringstore

/// The segment mover's batch sync by one commit of the file system's journal
/// (``FileSystemCommit``): taken only where the file system has such a
/// journal, and a power cut at any of its steps loses no event.
@Suite struct FileSystemCommitTests {
    static let streams = 8

    @Test func itIsTakenOnlyOnAFileSystemWithAJournal() {
        #expect(!FileSystemCommit.isAvailable(at: FilePath("/proc")), "procfs")
        #expect(!FileSystemCommit.isAvailable(at: FilePath("/nonexistent/ringstore")), "no such path")
        if FileManager.default.fileExists(atPath: "/dev/shm") {
            #expect(!FileSystemCommit.isAvailable(at: FilePath("/dev/shm")), "tmpfs")
        }
    }

    /// `streams` streams with one event each in the split segments (the
    /// splitter held until the close), and their events' ids.
    static func build(at path: String) async throws -> [String: [UUID]] {
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        store.splitter.pause()
        var ids: [String: [UUID]] = [:]
        for stream in 0..<streams {
            let event = EventData(type: "Reading", json: "{\"sensor\":\(stream),\"value\":\(stream * 7)}")
            try await store.append(to: "sensor-\(stream)", events: [event])
            ids["sensor-\(stream)"] = [event.id]
        }
        store.splitter.resume()
        try await store.close()
        #expect(FileManager.default.fileExists(atPath: path + "/split/00000001.seg"))
        return ids
    }

    static func configuration() -> Configuration {
        var configuration = Configuration.filePerStream()
        configuration.commitsFileSystemJournal = true
        return configuration
    }

    /// Moves everything in the segments into stream files, as the mover does,
    /// then closes the store.
    static func moveEverything(at path: String) async throws {
        let store = try await EventStore.open(at: path, configuration: configuration())
        store.splitter.mover.pause()
        try store.splitter.mover.moveEverything()
        try await store.close()
    }

    static func expectEveryEvent(at path: String, _ ids: [String: [UUID]], _ context: String) async throws {
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        for (stream, expected) in ids {
            #expect(try await store.read(stream: stream).collect().map(\.id) == expected, "\(context): \(stream)")
        }
        try await store.close()
    }

    @Test func theMoversBatchesCommitTheJournalAndKeepEveryEvent() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let ids = try await Self.build(at: path)
        try await Self.moveEverything(at: path)
        #expect(!FileManager.default.fileExists(atPath: path + "/split/00000001.seg"), "the segment was moved and deleted")
        for stream in ids.keys {
            #expect(FileManager.default.fileExists(atPath: path + "/" + StreamNaming.relativePath(stream).string), "\(stream) has its file")
        }
        try await Self.expectEveryEvent(at: path, ids, "after the moves")
        try AdminFixture.expectVerifiesClean(at: path, "after the moves")
    }

    /// A power cut at every operation of the moves and the close after them
    /// (each file written, its pages written back, the journal's commit, the
    /// cache flush, the segment's removal, the checkpoint that makes the
    /// removal durable), under profiles from "nothing unsynced survives" to
    /// "everything does": every event is read back and the store verifies clean.
    @Test func aPowerCutAnywhereInTheMovesLosesNothing() async throws {
        let dir = TemporaryDirectory()
        let template = dir.child("template")
        let ids = try await Self.build(at: template)
        let profiles = [
            PowerLossProfile(writeSurvival: 0, tearing: 0, directorySurvival: 0),
            PowerLossProfile(writeSurvival: 1, tearing: 0, directorySurvival: 0),
            PowerLossProfile(writeSurvival: 0.5, tearing: 0.5, directorySurvival: 0.5),
        ]

        let rounds = PowerCutRounds(directory: dir, template: template, configuration: Self.configuration(), profiles: profiles)
        let kinds = try await rounds.run({ store in
            store.splitter.mover.pause()
            try store.splitter.mover.moveEverything()
            try await store.close()  // its checkpoint makes the segment's removal durable
        }, check: { after, context in
            try await Self.expectEveryEvent(at: after, ids, context)
            try AdminFixture.expectVerifiesClean(at: after, context)
        })
        #expect(kinds.contains(.commitFileSystem), "the batch committed the journal")
        #expect(!kinds.contains(.syncFileSystem), "no syncfs")
    }

    /// A failed write-back or commit leaves the segment (nothing is deleted
    /// before its entries are durable elsewhere), and the next move completes it.
    @Test func aFailedBatchSyncKeepsTheSegmentForTheNextMove() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let ids = try await Self.build(at: path)
        let store = try await EventStore.open(at: path, configuration: Self.configuration())
        store.splitter.mover.pause()
        // The batch's first write-back fails (the commit's own failure: the power-loss test's cuts).
        let fault = FaultInjection.install(.init(operation: .flush, pathContains: path, effect: .fail(.ioError), count: 1))
        #expect(throws: RingstoreError.self) { try store.splitter.mover.moveEverything() }
        FaultInjection.remove(fault)
        #expect(FileManager.default.fileExists(atPath: path + "/split/00000001.seg"), "the segment stays")
        try store.splitter.mover.moveEverything()
        #expect(!FileManager.default.fileExists(atPath: path + "/split/00000001.seg"))
        try await store.close()
        try await Self.expectEveryEvent(at: path, ids, "after the retried move")
        try AdminFixture.expectVerifiesClean(at: path, "after the retried move")
    }
}
