import ArgumentParser
import Foundation
import Ringstore
import RingstoreJSONLines

/// `ringstore streams`: lists stream names with their current versions.
struct StreamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "streams", abstract: "List streams and their current versions.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            if let remote = try store.remote() {
                try await remote.withConnection { connection in
                    var after: String?
                    repeat {
                        let query = RemoteStore.query([("count", "10000")] + (after.map { [("after", $0)] } ?? []))
                        let page = try JSONLine(try await connection.call(.GET, "/streams" + query))
                        for element in try JSONLine.arrayElements(Array(page.members["streams"] ?? [])) {
                            let entry = try JSONLine(element)
                            print("\(try entry.string("name") ?? "")\t\(try entry.scalarText("version") ?? "-")")
                        }
                        after = try page.members["next"].flatMap { $0.first == UInt8(ascii: "\"") ? try page.string("next") : nil }
                    } while after != nil
                }
                return
            }
            try await store.withStore(create: false) { store in
                for name in try store.streamNames() {
                    print("\(name)\t\(try store.currentVersion(of: name).map(String.init) ?? "-")")
                }
            }
        }
    }
}

/// `ringstore stats`: the journal's cursors and the store's counters.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show the journal cursors and store counters.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            if let remote = try store.remote() {
                let json = try await remote.withConnection { try JSONLine(try await $0.call(.GET, "/stats")) }
                func number(_ name: String) throws -> UInt64 {
                    guard let value = try json.scalarText(name).flatMap(UInt64.init) else {
                        throw RingstoreError(.corruptData, "the server's stats have no \(name)")
                    }
                    return value
                }
                print(Self.table(capacity: try number("journalCapacity"), written: try number("writtenPosition"),
                                 durable: try number("durablePosition"), split: try number("splitPosition"),
                                 checkpoint: try number("checkpointPosition"), inUse: try number("journalBytesInUse"),
                                 streams: Int(try number("streams")), inJournal: Int(try number("eventsInJournal")),
                                 segments: try number("splitSegmentBytes"), segmentHolds: try number("splitSegmentHolds"),
                                 recovered: Int(try number("recoveredEvents")), stopReason: try json.string("recoveryStopReason") ?? ""))
                return
            }
            try await store.withStore(create: false) { store in
                let s = store.stats()
                print(Self.table(capacity: s.journalCapacity, written: s.writtenPosition, durable: s.durablePosition,
                                 split: s.splitPosition, checkpoint: s.checkpointPosition, inUse: s.journalBytesInUse,
                                 streams: s.streamCount, inJournal: s.eventsInJournal,
                                 segments: s.splitSegmentBytes, segmentHolds: s.splitSegmentHolds, recovered: s.recoveredEvents,
                                 stopReason: s.recoveryStopReason))
            }
        }
    }

    /// The table both modes print.
    static func table(capacity: UInt64, written: UInt64, durable: UInt64, split: UInt64, checkpoint: UInt64, inUse: UInt64,
                      streams: Int, inJournal: Int, segments: UInt64, segmentHolds: UInt64,
                      recovered: Int, stopReason: String) -> String {
        ringstore.table([
            ("journal capacity", megabytes(capacity)),
            ("written / durable", "\(written) / \(durable)"),
            ("split / checkpoint", "\(split) / \(checkpoint)"),
            ("journal in use", megabytes(inUse)),
            ("streams", grouped(streams)),
            ("events still in journal", grouped(inJournal)),
            ("split segments", megabytes(segments) + (segmentHolds > 0 ? " (appends held for the mover \(segmentHolds) times)" : "")),
            ("recovered at open", "\(grouped(recovered)) events (\(stopReason))"),
        ])
    }
}
