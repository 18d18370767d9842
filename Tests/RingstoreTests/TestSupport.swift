import Foundation
import SystemPackage
import Logging
import Synchronization
import Testing
@testable import Ringstore

/// The bound on waits that end with a readiness signal or a condition: long
/// enough never to end a test that works on a loaded machine (the suite runs
/// its tests in parallel, beside other builds), short enough that a test that
/// hangs fails with a message.
let generousWait: Duration = .seconds(60)

/// Stores log at `warning` in tests: the `info` lines each store writes when it
/// opens and closes add up to thousands across the suite. A test that inspects
/// the log passes a logger of its own to `EventStore.open`. Bootstrapping is
/// process-wide and allowed once: the helpers every test uses to set up
/// (``TemporaryDirectory``, ``Configuration/testing(capacity:durability:)``) do it.
let quietTestLogging: Void = {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .warning
        return handler
    }
}()

/// A temporary directory for one test, removed when the test ends.
final class TemporaryDirectory: Sendable {
    let path: String

    /// `inMemory`: on `/dev/shm` where it exists (a tmpfs: syncs cost nothing,
    /// so a test that injects slow syncs is not confused by a busy disk).
    init(_ name: String = #function, inMemory: Bool = false) {
        _ = quietTestLogging
        var isFolder: ObjCBool = false
        let base = inMemory && FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isFolder) && isFolder.boolValue
            ? "/dev/shm" : FileManager.default.temporaryDirectory.path
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = "\(base)/ringstore-test-\(safe)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside the directory (not created).
    func child(_ name: String) -> String { "\(path)/\(name)" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

extension Configuration {
    /// A small store for tests: 1 MiB ring, and appends and readers that wait
    /// for the splitter as long as ``generousWait``: tests check what the store
    /// does, not how fast a loaded machine splits. Tests of the journal-full
    /// and reader timeouts set tight waits of their own.
    static func testing(capacity: UInt64 = 1 << 20, durability: Durability = .durable) -> Configuration {
        _ = quietTestLogging
        var configuration = Configuration()
        configuration.journalCapacity = capacity
        configuration.durability = durability
        configuration.journalFullWait = generousWait
        configuration.readerWait = generousWait
        configuration.maxEventSize = Int(capacity / 4)
        return configuration
    }

    /// ``testing(capacity:durability:)`` with every stream moved into a file of its own
    /// (``streamBuckets`` off): for tests of stream files themselves.
    static func filePerStream(capacity: UInt64 = 1 << 20, durability: Durability = .durable) -> Configuration {
        var configuration = testing(capacity: capacity, durability: durability)
        configuration.streamBuckets = false
        return configuration
    }
}

/// Thrown when ``waitUntil(_:timeout:sourceLocation:_:)`` gives up.
struct WaitTimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Waits until `condition` holds, looking every 2 ms, for up to `timeout`;
/// records an issue naming `what` and throws if it never does. For readiness
/// that has no signal of its own to await (a cursor or counter of the store
/// reaching a value, another task reaching a point).
func waitUntil(_ what: String, timeout: Duration = generousWait, sourceLocation: SourceLocation = #_sourceLocation,
               _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("waited \(timeout) for \(what)", sourceLocation: sourceLocation)
            throw WaitTimedOut(description: "waited \(timeout) for \(what)")
        }
        try await Task.sleep(for: .milliseconds(2))
    }
}

/// Retries `body` until it succeeds or `timeout` passes, then throws its last
/// error (for "works again once the fault clears").
@discardableResult
func eventually<R>(timeout: Duration = generousWait, _ body: () async throws -> R) async throws -> R {
    let deadline = ContinuousClock.now + timeout
    while true {
        do { return try await body() } catch {
            if ContinuousClock.now >= deadline { throw error }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Opens a store with a 4 MiB journal and its splitter held, and appends 400
/// events of 2 KB to 4 streams: 200 KB each, so that the first checkpoint
/// writes each straight into its own file (whose syncs a test can then fault).
func storeHoldingFourLargeStreams(at dir: TemporaryDirectory) async throws -> EventStore {
    let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 4 << 20))
    store.splitter.pause()
    let payload = String(repeating: "x", count: 2_000)
    for i in 0..<400 { try await store.append(to: "s-\(i % 4)", events: [event(payload + "\(i)")]) }
    return store
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
func moveSegmentsIntoStreamFiles(_ path: String, configuration: Configuration = .filePerStream()) async throws {
    let store = try await EventStore.open(at: path, configuration: configuration)
    try store.splitter.mover.moveEverything()
    try await store.close()
}

/// A list that concurrent tasks can share (what a subscriber has seen so far).
/// Locked with `NSLock`, which ThreadSanitizer sees (it cannot see
/// `Synchronization.Mutex` on Linux, and the name `Mutex` is ambiguous in a
/// ThreadSanitizer build, where the library brings its own).
final class Recorder<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Element] = []
    func append(_ element: Element) { lock.withLock { storage.append(element) } }
    var values: [Element] { lock.withLock { storage } }
}

extension SplitSegment {
    /// Where the first entry of the segment file at `path` starts (after its header and dictionary area).
    static func firstEntryOffset(of path: String) throws -> UInt64 {
        let file = FilePath(path)
        guard let number = number(inFileName: file.lastComponent?.string ?? ""),
              let segment = try open(number: number, in: file.removingLastComponent()) else {
            throw RingstoreError(.invalidArgument, "\(path) is no split segment with a header")
        }
        return segment.entriesStart
    }
}
