import Foundation
import SystemPackage
import Testing
@_spi(PowerLossTesting) @testable import Ringstore

/// The segment mover compresses the small blocks it builds against the
/// store's stream-file dictionary, adopting its segments' dictionary when the
/// store has none: the file is durable before any block uses it, a damaged
/// one is never replaced, and a power cut anywhere in the adoption leaves
/// every event readable.
@Suite struct MovedBlockDictionaryTests {
    static let streams = 100
    static let rounds = 3
    /// Streams that have a file before the rounds: ``filedEvents`` events,
    /// more than a block's worth, which the splitter writes into the file at once.
    static let filed = 3
    static let filedEvents = 240

    /// ``filed`` streams given a file, then ``streams`` streams of one
    /// sensor-like event per round, a clean close after each round: each stream
    /// has `rounds` small entries in the split segments, and the first
    /// segment's dictionary is full-size.
    static func build(at path: String) async throws -> [String: [UUID]] {
        var ids: [String: [UUID]] = [:]
        let first = try await EventStore.open(at: path, configuration: .filePerStream())
        for stream in 0..<filed {
            let events = (0..<filedEvents).map { StreamFileDictionaryTests.event(stream, 1_000 + $0) }
            try await first.append(to: "sensor-\(stream)", events: events)
            ids["sensor-\(stream)", default: []] += events.map(\.id)
        }
        try await first.close()
        #expect(!FileManager.default.fileExists(atPath: path + "/split/00000001.seg"), "the filed streams went into their files")
        for stream in 0..<filed {
            let headers = try StreamFileDictionaryTests.blockHeaders(of: path, stream: "sensor-\(stream)")
            #expect(!headers.isEmpty && headers.allSatisfy { !$0.dictionary }, "sensor-\(stream) has a file")
        }
        for round in 0..<rounds {
            let store = try await EventStore.open(at: path, configuration: .filePerStream())
            // Split only at the close, so that the segment's first write (its dictionary's
            // sample) holds every stream: a checkpoint during the appends on a slow machine
            // sampled only the first few, too small a dictionary to adopt.
            store.splitter.pause()
            for stream in 0..<streams {
                let event = StreamFileDictionaryTests.event(stream, round)
                try await store.append(to: "sensor-\(stream)", events: [event])
                ids["sensor-\(stream)", default: []].append(event.id)
            }
            store.splitter.resume()
            try await store.close()
        }
        return ids
    }

    /// Moves the first `count` streams' entries into their files, as the mover does.
    static func move(_ count: Int, in store: EventStore) throws {
        for stream in 0..<count {
            let name = "sensor-\(stream)"
            let number = try #require(store.catalog.number(of: name))
            #expect(try store.split.move(stream: name, number: number) == .file)
        }
    }

    static func expectEveryEvent(at path: String, _ ids: [String: [UUID]], _ context: String,
                                 sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        for (stream, expected) in ids {
            #expect(try await store.read(stream: stream).collect().map(\.id) == expected, "\(context): \(stream)",
                    sourceLocation: sourceLocation)
        }
        #expect(try await store.readAll().collect().count == streams * rounds + filed * filedEvents, "\(context)",
                sourceLocation: sourceLocation)
        try await store.close()
    }

    @Test func aMoveAdoptsTheSegmentsDictionaryAndItsSmallBlocksUseIt() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let ids = try await Self.build(at: path)
        #expect(try StreamFileDictionary.read(in: FilePath(path)) == nil, "no store dictionary before a move")
        // A crash in an earlier adoption left its unfinished file: the open removes it.
        let unfinished = path + "/streams/" + StreamFileDictionary.unfinishedName
        #expect(FileManager.default.createFile(atPath: unfinished, contents: Data("partial".utf8)))

        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        #expect(!FileManager.default.fileExists(atPath: unfinished))
        try Self.move(10, in: store)
        let adopted = try #require(store.split.directory.dictionary)
        #expect(adopted.bytes.count == CompressionDictionary.maxBytes)
        try await store.close()

        let stored = try #require(try StreamFileDictionary.read(in: FilePath(path)))
        #expect(stored.damage.isEmpty && stored.dictionary?.id == adopted.id)
        for stream in 0..<10 {
            // The moved blocks (a filed stream's file began with blocks of its own).
            let headers = try StreamFileDictionaryTests.blockHeaders(of: path, stream: "sensor-\(stream)")
            let moved = stream < Self.filed ? Array(headers.drop { !$0.dictionary }) : headers
            #expect(!moved.isEmpty && moved.allSatisfy { $0.dictionary && $0.dictionaryID == adopted.id }, "sensor-\(stream)")
        }
        try await Self.expectEveryEvent(at: path, ids, "after the moves")
        try AdminFixture.expectVerifiesClean(at: path, "after the moves")
        // `stats`' figures by kind: what the stream files hold, and what the segments still do.
        let check = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let inventory = check.verify().inventory
        check.close()
        #expect(inventory.fileEvents == Self.filed * Self.filedEvents + 10 * Self.rounds)
        #expect(inventory.events == Self.filed * Self.filedEvents + Self.streams * Self.rounds)
        #expect(inventory.fileStoredBytes > 0 && inventory.fileStoredBytes < inventory.storedBytes
                && inventory.fileRawBytes > inventory.fileStoredBytes && inventory.fileRawBytes < inventory.rawBytes)

        // Compaction decodes the moved blocks with the old dictionary (a store this
        // small gets none of its own) and the store reads the same.
        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        _ = try await session.compact(options: CompactOptions())
        session.close()
        #expect(try StreamFileDictionary.read(in: FilePath(path)) == nil)
        try await Self.expectEveryEvent(at: path, ids, "after compaction")
        try AdminFixture.expectVerifiesClean(at: path, "after compaction")
    }

    /// A `streams/dictionary` with no intact copy is the one its blocks need:
    /// the mover leaves it and builds its blocks without a dictionary.
    @Test func aDamagedDictionaryFileIsNeverReplaced() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let ids = try await Self.build(at: path)
        let file = path + "/streams/" + StreamFileDictionary.fileName
        let damaged = Data(StreamFileDictionary.magic + [UInt8](repeating: 0x5A, count: 64))
        #expect(FileManager.default.createFile(atPath: file, contents: damaged))

        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        try Self.move(5, in: store)
        #expect(store.split.directory.dictionary == nil)
        try await store.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == damaged)
        let headers = try StreamFileDictionaryTests.blockHeaders(of: path, stream: "sensor-0")
        #expect(!headers.isEmpty && headers.allSatisfy { !$0.dictionary })
        try await Self.expectEveryEvent(at: path, ids, "after the moves")
    }

    /// What ``StreamFileDictionary/writeDurably(_:in:)`` promises: once the
    /// adoption returns, the file is there, whole, after a power cut that
    /// loses every unsynced write and directory change (the moved blocks that
    /// use it may be synced, and their segment deleted, before anything else
    /// syncs `streams/`).
    @Test func anAdoptedDictionarySurvivesACutRightAfterwards() async throws {
        let dir = TemporaryDirectory()
        let root = dir.child("store")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        let simulation = try PowerLossSimulation.install(root: root)
        defer { simulation.uninstall() }
        let store = try await EventStore.open(at: root, configuration: .filePerStream())
        let bytes = (0..<CompressionDictionary.maxBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
        let candidate = bytes.withUnsafeBytes { CompressionDictionary($0) }
        #expect(try store.split.directory.adoptDictionary(candidate)?.id == candidate.id)
        simulation.cut()
        try? await store.close()
        let after = dir.child("after")
        _ = try simulation.materialise(into: after, seed: 1,
                                       profile: PowerLossProfile(writeSurvival: 0, tearing: 0, directorySurvival: 0))
        let stored = try #require(try StreamFileDictionary.read(in: FilePath(after)), "the dictionary's file is gone")
        #expect(stored.damage.isEmpty && stored.dictionary?.id == candidate.id)
    }

    /// A power cut at every operation of the first moves (the dictionary's
    /// file written, synced, renamed, its folder synced, then the stream files
    /// written), under profiles from "nothing unsynced survives" to
    /// "everything does": the reopened store reads every event and verifies
    /// clean.
    @Test func aPowerCutDuringTheAdoptionLosesNothing() async throws {
        let dir = TemporaryDirectory()
        let template = dir.child("template")
        let ids = try await Self.build(at: template)
        // The second keeps the moved blocks (written into files that exist: no
        // directory change needed) while losing every unsynced directory change.
        // Unsynced moved blocks are also cut at open if they cannot be read (their
        // segment still holds them): `anAdoptedDictionarySurvivesACutRightAfterwards` pins the order itself.
        let profiles = [
            PowerLossProfile(writeSurvival: 0, tearing: 0, directorySurvival: 0),
            PowerLossProfile(writeSurvival: 1, tearing: 0, directorySurvival: 0),
            PowerLossProfile(writeSurvival: 1, tearing: 0, directorySurvival: 1),
            PowerLossProfile(writeSurvival: 0.5, tearing: 0.5, directorySurvival: 0.5),
        ]

        // The moves of 3 streams: the dictionary's file written, synced, renamed, its folder synced, then the stream files.
        let rounds = PowerCutRounds(directory: dir, template: template, configuration: .filePerStream(), profiles: profiles)
        let kinds = try await rounds.run({ store in try Self.move(3, in: store) }, check: { after, context in
            try await Self.expectEveryEvent(at: after, ids, context)
            try AdminFixture.expectVerifiesClean(at: after, context)
        })
        #expect(kinds.count >= 5, "write, sync, rename and folder sync of the dictionary, then the stream files")
    }
}
