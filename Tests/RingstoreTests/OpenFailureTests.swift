import Foundation
import Testing
@testable import Ringstore

/// Descriptors of this process open on files under `directory`.
func openDescriptors(under directory: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
        .filter { $0.hasPrefix(directory + "/") }
}

/// Mappings in this process of files under `directory`.
func mappings(under directory: String) -> [String] {
    let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
    return maps.split(separator: "\n").map(String.init).filter { $0.contains(directory + "/") }
}

/// An open that fails part-way releases whatever it had acquired.
@Suite struct OpenFailureTests {
    /// A store whose `streams.catalog` is a directory fails to open after the
    /// journal and its threads are up. Twenty such opens must leave the process
    /// with as many threads, descriptors and mappings as before, and the lock
    /// free. Counted in a child process: the suite opens stores in parallel.
    @Test func failedOpensLeaveNoThreadDescriptorMappingOrLockBehind() async throws {
        let executable = CrashTests.tortureExecutable
        try #require(FileManager.default.isExecutableFile(atPath: executable), "build ringstore-torture first: \(executable)")
        let dir = TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["failed-open", "--dir", dir.child("store"), "--attempts", "20"]
        let output = Pipe()
        process.standardOutput = output
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(errorText)")
        func counts(_ label: String) -> (before: Int, after: Int)? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(label + " ") }) else { return nil }
            let numbers = line.split(separator: " ").dropFirst().compactMap { Int($0) }
            return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
        }
        let threads = try #require(counts("THREADS"), "\(text)")
        let descriptors = try #require(counts("DESCRIPTORS"), "\(text)")
        let maps = try #require(counts("MAPPINGS"), "\(text)")
        // Each failed open used to leave its flusher and acknowledger threads (40 here).
        // The runtime's own pool may still add a thread or two.
        #expect(threads.after <= threads.before + 2, "threads: \(threads.before) before 20 failed opens, \(threads.after) after")
        #expect(descriptors.after == descriptors.before, "descriptors: \(descriptors.before) before, \(descriptors.after) after")
        #expect(maps.after == 0 && maps.before == 0, "mappings of the store's files: \(maps.before) before, \(maps.after) after")
        #expect(text.contains("REOPENED"), "the lock was released: the store opens once its catalog is fixed")
    }

    /// A thread that cannot be started (`pthread_create` fails, e.g. `EAGAIN`
    /// under a thread limit) fails the open with an error, not a trap, and
    /// stops whatever the open had started before it.
    @Test(arguments: ["rs-acknowledger", "rs-flusher", "rs-checkpoint", "rs-splitter"])
    func aThreadThatCannotStartFailsTheOpenAndLeavesNothingBehind(thread: String) async throws {
        let dir = TemporaryDirectory()
        do {
            let first = try await EventStore.open(at: dir.path, configuration: .testing())
            try await first.append(to: "s", events: [event("before")])
            try await first.close()
        }

        let journal = dir.child(Journal.fileName)
        let error = await withFault(.startThread, on: journal + "/" + thread, .fail(.resourceTemporarilyUnavailable), count: 1) { _ in
            await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing()) }
        }
        #expect(error?.code == .ioError)
        #expect(error?.message.contains(thread) == true, "\(String(describing: error))")
        #expect(BackgroundThread.running(ownedBy: journal) == 0, "the threads the open had started have ended")
        #expect(openDescriptors(under: dir.path).isEmpty, "\(openDescriptors(under: dir.path))")
        #expect(mappings(under: dir.path).isEmpty, "\(mappings(under: dir.path))")

        // The lock was released, and the store is whole.
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            try await store.append(to: "s", events: [event("after")])
            #expect(try await store.read(stream: "s").collect().count == 2)
            try await store.close()
            #expect(BackgroundThread.running(ownedBy: journal) == 0, "a closed store's threads have ended")
        }
        #expect(openDescriptors(under: dir.path).isEmpty, "a closed store, once released, keeps no descriptor: \(openDescriptors(under: dir.path))")
        #expect(mappings(under: dir.path).isEmpty, "\(mappings(under: dir.path))")
    }

    /// The catalog and the global index cut a torn tail when they are opened; if
    /// that write fails, the open fails — and must close the file it had just
    /// opened (a throw before an object is whole skips its `deinit`), besides
    /// stopping the journal's threads.
    @Test(arguments: ["streams.catalog", "global.index"])
    func aFailedRepairOfTheCatalogOrIndexAtOpenClosesItsFile(file: String) async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            try await store.append(to: "s", events: [event("kept")])
            try await store.close()
        }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: dir.child(file)))
        try handle.seekToEnd()
        try handle.write(contentsOf: [1, 2, 3, 4, 5])  // a torn tail, cut at open
        try handle.close()

        let error = await withFault(.write, on: dir.child(file), .fail(.noSpace)) { _ in
            await ringstoreError { _ = try await EventStore.open(at: dir.path, configuration: .testing()) }
        }
        #expect(error?.code == .ioError)
        #expect(error?.path == dir.child(file))
        #expect(openDescriptors(under: dir.path).isEmpty, "\(openDescriptors(under: dir.path))")
        #expect(mappings(under: dir.path).isEmpty, "\(mappings(under: dir.path))")
        #expect(BackgroundThread.running(ownedBy: dir.child(Journal.fileName)) == 0)

        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await store.read(stream: "s").collect().count == 1)
        try await store.close()
    }
}
