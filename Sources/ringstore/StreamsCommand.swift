import ArgumentParser
import Foundation
import Ringstore

/// `ringstore streams`: lists stream names with their current versions.
struct StreamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "streams", abstract: "List streams and their current versions.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
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
            try await store.withStore(create: false) { store in
                let s = store.stats()
                print(table([
                    ("journal capacity", megabytes(s.journalCapacity)),
                    ("written / durable", "\(s.writtenPosition) / \(s.durablePosition)"),
                    ("split / checkpoint", "\(s.splitPosition) / \(s.checkpointPosition)"),
                    ("journal in use", megabytes(s.journalBytesInUse)),
                    ("streams", grouped(s.streamCount)),
                    ("events still in journal", grouped(s.eventsInJournal)),
                    ("recovered at open", "\(grouped(s.recoveredEvents)) events (\(s.recoveryStopReason))"),
                ]))
            }
        }
    }
}
