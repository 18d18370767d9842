import Foundation
import Synchronization
import Testing
@testable import Ringstore

/// How many times slower timing expectations may be in a ThreadSanitizer build
/// (`-Xswiftc -DRINGSTORE_TSAN`, see the README), which runs everything 5-20 times
/// slower, and more when several suites run at once on few cores.
#if RINGSTORE_TSAN
let timingSlowdown = 25
#else
let timingSlowdown = 1
#endif

/// A temporary directory for one test, removed when the test ends.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ name: String = #function) {
        let base = FileManager.default.temporaryDirectory.path
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = "\(base)/ringstore-test-\(safe)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside the directory (not created).
    func child(_ name: String) -> String { "\(path)/\(name)" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

extension Configuration {
    /// A small store for tests: 1 MiB ring, short waits.
    static func testing(capacity: UInt64 = 1 << 20, durability: Durability = .durable) -> Configuration {
        var configuration = Configuration()
        configuration.journalCapacity = capacity
        configuration.durability = durability
        configuration.journalFullWait = .milliseconds(200) * timingSlowdown
        configuration.readerWait = .milliseconds(200) * timingSlowdown
        configuration.maxEventSize = Int(capacity / 4)
        return configuration
    }
}

func event(_ text: String, type: String = "Test", id: UUID = UUID()) -> EventData {
    EventData(id: id, type: type, json: "{\"v\":\"\(text)\"}")
}

func text(of event: RecordedEvent) -> String {
    String(decoding: event.data, as: UTF8.self)
}

/// Runs `body` and returns the `RingstoreError` it throws (failing the test if it throws none or another).
func ringstoreError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> RingstoreError? {
    do {
        try await body()
        Issue.record("expected a RingstoreError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as RingstoreError {
        return error
    } catch {
        Issue.record("expected a RingstoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A counter that concurrent tasks can share.
final class Counter: Sendable {
    private let storage = Synchronization.Atomic<Int>(0)
    func add(_ n: Int = 1) { storage.add(n, ordering: .relaxed) }
    var value: Int { storage.load(ordering: .relaxed) }
}

/// Opens the closed store in `path`, moves everything its split segments hold
/// into stream files, and closes it: for tests about stream files themselves
/// (a small stream is split into a segment first).
func moveSegmentsIntoStreamFiles(_ path: String, configuration: Configuration = .testing()) async throws {
    let store = try await EventStore.open(at: path, configuration: configuration)
    try store.splitter.mover.moveEverything()
    try await store.close()
}
