import Foundation
import Glibc
import Ringstore

/// Opens that fail part-way must leave nothing behind: no thread, no
/// descriptor, no mapping, no lock.
///
/// Thread and descriptor counts are process-wide, and the test suite opens
/// stores in parallel, so this runs in a child process of its own
/// (`ringstore-torture failed-open`). It makes the store's `streams.catalog` a
/// directory (the open then fails after the journal, and its threads, are
/// up), opens the store `attempts` times, and prints
/// `THREADS <before> <after>`, `DESCRIPTORS <before> <after>` and
/// `MAPPINGS <before> <after>` (mappings of files in the store), each counted
/// after one failed open (which starts whatever the runtime starts once) and
/// after all of them. It then removes the directory, opens the store once more
/// (the lock must have been released) and prints `REOPENED`.
public enum FailedOpenScenario {
    public static func run(directory: String, attempts: Int) async throws {
        try FileManager.default.createDirectory(atPath: directory + "/streams.catalog", withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.journalCapacity = 1 << 20
        configuration.maxEventSize = 64 << 10
        func failingOpen() async throws {
            do {
                let store = try await EventStore.open(at: directory, configuration: configuration, logger: .crashTesting)
                try await store.close()
                throw RingstoreError(.invalidArgument, "the store opened although its catalog is a directory")
            } catch let error as RingstoreError where error.path?.hasSuffix("streams.catalog") == true {
                // The expected failure.
            }
        }
        try await failingOpen()
        let before = (threads: count("/proc/self/task"), descriptors: count("/proc/self/fd"), mappings: mappings(of: directory))
        for _ in 0..<attempts { try await failingOpen() }
        let after = (threads: count("/proc/self/task"), descriptors: count("/proc/self/fd"), mappings: mappings(of: directory))
        CrashWriter.writeLine("THREADS \(before.threads) \(after.threads)\n")
        CrashWriter.writeLine("DESCRIPTORS \(before.descriptors) \(after.descriptors)\n")
        CrashWriter.writeLine("MAPPINGS \(before.mappings) \(after.mappings)\n")
        try FileManager.default.removeItem(atPath: directory + "/streams.catalog")
        let store = try await EventStore.open(at: directory, configuration: configuration, logger: .crashTesting)
        try await store.append(to: "after", events: [EventData(type: "T", json: "{}")])
        try await store.close()
        CrashWriter.writeLine("REOPENED\n")
    }

    /// Entries in a `/proc` folder.
    private static func count(_ folder: String) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: folder).count) ?? -1
    }

    /// Lines of `/proc/self/maps` naming a file under `directory`.
    private static func mappings(of directory: String) -> Int {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return -1 }
        return maps.split(separator: "\n").filter { $0.contains(directory) }.count
    }
}
