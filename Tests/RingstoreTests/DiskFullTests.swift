import Foundation
import Glibc
import RingstoreCrashTesting
import Testing
@_spi(FaultTesting) @testable import Ringstore

/// A small tmpfs mounted for one test, unmounted (lazily) when it ends.
final class SmallFileSystem: Sendable {
    let directory: TemporaryDirectory
    var path: String { directory.path }

    /// Whether this process may mount a tmpfs (root, and a sandbox that allows it).
    static let canMount: Bool = {
        let probe = TemporaryDirectory("mountprobe")
        guard mount("tmpfs", probe.path, "tmpfs", 0, "size=1m") == 0 else { return false }
        umount2(probe.path, Int32(MNT_DETACH))
        return true
    }()

    init(megabytes: Int) throws {
        directory = TemporaryDirectory("smallfs")
        guard mount("tmpfs", directory.path, "tmpfs", 0, "size=\(megabytes)m") == 0 else {
            throw RingstoreError(.ioError, "cannot mount a \(megabytes) MiB tmpfs at \(directory.path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { umount2(directory.path, Int32(MNT_DETACH)) }
}

/// A real full disk during ingest: appends fail with a clear error or wait,
/// nothing acknowledged is lost, nothing corrupt becomes visible, and once space
/// is freed the same store (no restart) takes appends again.
@Suite struct DiskFullTests {
    /// `buckets`: small streams in bucket files (the default) or a file each. Bucket
    /// files need more room in a file system this small: each carries two copies of
    /// the store's 16 KiB dictionary (42 streams here, 42 files: 1.4 MB), so they get
    /// a larger one, with more ballast to give back.
    @Test(.enabled(if: SmallFileSystem.canMount, "needs permission to mount a tmpfs (root, outside a restricted sandbox); skipped here"),
          arguments: [false, true])
    func fillingTheDiskDuringIngestLosesNothingAndRecoversWhenSpaceReturns(buckets: Bool) async throws {
        let fs = try SmallFileSystem(megabytes: buckets ? 12 : 8)
        // Ballast to delete later, so the test can give space back.
        let ballast = fs.path + "/ballast"
        #expect(FileManager.default.createFile(atPath: ballast, contents: Data(count: (buckets ? 5 : 3) << 20)))
        let storePath = fs.path + "/store"
        var config = Configuration.testing(capacity: 1 << 20)
        config.streamBuckets = buckets
        let store = try await EventStore.open(at: storePath, configuration: config)
        // Appends wait for ring space as long as a loaded machine's splitter may need,
        // until it reports the full disk; then 300 ms. So every append refused is
        // refused because of the disk, and must say so.
        let watch = DiskFullWatch.start(store, thenWait: .milliseconds(300))
        defer { watch.cancel() }

        var random = SeededRandom(seed: 7)
        func payload(_ stream: String, _ n: Int) -> [UInt8] {
            // Incompressible, so LZ4 cannot hide the bytes; the head says what it is.
            Array("\(stream)#\(n)|".utf8) + (0..<2000).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
        var acknowledged: [UUID: (stream: String, version: UInt64, data: [UInt8])] = [:]
        var errors: [RingstoreError] = []
        var n = 0
        while errors.count < 3 && n < 20_000 {
            n += 1
            let stream = "fill-\(n % 32)"
            let data = payload(stream, n)
            let e = EventData(type: "Fill", data: data, contentType: .binary)
            do {
                let result = try await store.append(to: stream, events: [e])
                acknowledged[e.id] = (stream, result.firstVersion, data)
            } catch let error as RingstoreError {
                errors.append(error)
            }
        }
        try #require(!errors.isEmpty, "the disk never filled (\(n) appends)")
        watch.cancel()  // it returns what it saw, if anything
        let reported = await watch.value
        #expect(reported?.description.contains("No space left on device") == true, "\(String(describing: reported))")
        for error in errors {
            #expect(error.code == .journalFull || error.code == .ioError, "\(error)")
            #expect(error.description.contains("No space left on device"), "the error names the cause: \(error.detailedDescription())")
        }
        #expect(store.splitter.failure?.description.contains("No space left on device") == true)
        let stuck = store.stats()
        #expect(stuck.checkpointPosition < stuck.durablePosition, "the checkpoint waits for the stream files")

        // What is visible while the disk is full is whole.
        for event in try await store.readAll().collect() {
            if let ack = acknowledged[event.id] { #expect(event.data == ack.data && event.stream == ack.stream) }
        }

        // Space returns: the same store catches up and takes appends again (waiting
        // for ring space as long as that takes).
        try FileManager.default.removeItem(atPath: ballast)
        store.setJournalFullWait(generousWait)
        for i in 0..<10 {
            let stream = "after-\(i)"
            let data = payload(stream, i)
            let e = EventData(type: "After", data: data, contentType: .binary)
            let result = try await eventually { try await store.append(to: stream, events: [e]) }
            acknowledged[e.id] = (stream, result.firstVersion, data)
        }
        do {
            try await waitUntil("the splitter to recover and the checkpoint to pass what was stuck") {
                store.splitter.failure == nil && store.stats().checkpointPosition >= stuck.durablePosition
            }
        } catch {
            let now = store.stats()
            Issue.record("stuck: splitter failure \(String(describing: store.splitter.failure)); checkpoint \(now.checkpointPosition) of \(stuck.durablePosition); \(now)")
            throw error
        }
        try await store.close()

        let reopened = try await EventStore.open(at: storePath, configuration: config)
        let all = try await reopened.readAll().collect()
        let byID = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byID.count == all.count, "nothing stored twice")
        var lost = 0
        for (id, ack) in acknowledged {
            guard let stored = byID[id] else { lost += 1; continue }
            #expect(stored.stream == ack.stream && stored.version == ack.version && stored.data == ack.data)
        }
        #expect(lost == 0, "\(lost) of \(acknowledged.count) acknowledged events lost")
        for stream in Set(acknowledged.values.map(\.stream)) {
            let versions = try await reopened.read(stream: stream).collect().map(\.version)
            #expect(versions == Array(0..<UInt64(versions.count)), "stream \(stream)")
        }
        try await reopened.close()
    }

    /// The same promises where nothing can be mounted: a child process limits its
    /// file sizes (`RLIMIT_FSIZE`), so the stream file's writes fail with `EFBIG`
    /// while the preallocated journal keeps working, then lifts the limit.
    @Test func fileSizeLimitDuringIngestLosesNothingAndRecoversWhenLifted() async throws {
        let executable = CrashTests.tortureExecutable
        try #require(FileManager.default.isExecutableFile(atPath: executable), "build ringstore-torture first: \(executable)")
        let dir = TemporaryDirectory()
        let store = dir.child("store")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["file-size-limit", "--dir", store, "--limit-bytes", "\(3 << 20)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let errors = text.split(separator: "\n").filter { $0.hasPrefix("ERROR ") }
        #expect(!errors.isEmpty, "the limit was never reached")
        for error in errors { #expect(error.contains("File too large"), "the error names the cause: \(error)") }
        let splitter = text.split(separator: "\n").filter { $0.hasPrefix("SPLITTER ") }
        #expect(splitter.count == 1 && splitter.allSatisfy { $0.contains("File too large") }, "the splitter reported the limit: \(splitter)")
        #expect(text.contains("RECOVERED"), "appends work again once the limit is lifted")
        let acknowledgements = Acknowledgement.parse(text)
        #expect(acknowledgements.count > 100)
        var configuration = Configuration()
        configuration.journalCapacity = 1 << 20
        configuration.maxEventSize = 64 << 10
        let report = try await CrashVerifier.verify(directory: store, configuration: configuration, acknowledgements: acknowledgements)
        #expect(report.lostEvents == 0)
        #expect(report.problems.isEmpty, "\(report.problems.prefix(5))")
    }
}
