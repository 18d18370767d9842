import Logging
import Foundation
import Glibc
@_spi(FaultTesting) import Ringstore

/// A full disk without mounting anything: the process limits the size of the
/// files it may write (`RLIMIT_FSIZE`), ingests into one stream until its
/// stream file hits the limit (writes fail with `EFBIG`), then lifts the limit
/// and checks that the same store takes appends again.
///
/// It changes a process-wide limit, so it runs in a child process of its own
/// (`ringstore-torture file-size-limit`); the test reads the child's output:
/// an `ACK` line per acknowledged append (see ``Acknowledgement``), an
/// `ERROR <message>` line per refused append, `SPLITTER <message>` with the
/// splitter's failure, and `RECOVERED` once appends work again.
///
/// Appends wait long for ring space until the splitter reports the failure
/// (see ``DiskFullWatch``), so every refused append is refused because of the
/// limit, whatever the machine's load.
public enum FileSizeLimitScenario {
    public static func run(directory: String, limitBytes: UInt64) async throws {
        signal(SIGXFSZ, SIG_IGN)  // exceeding the limit then fails the write with EFBIG instead of killing the process
        try setLimit(limitBytes)
        var configuration = Configuration()
        configuration.journalCapacity = 1 << 20
        configuration.maxEventSize = 64 << 10
        configuration.journalFullWait = .seconds(60)
        let store = try await EventStore.open(at: directory, configuration: configuration, logger: .crashTesting)
        let watch = DiskFullWatch.start(store, thenWait: .milliseconds(300))
        var random = SeededRandom(seed: 11)
        func event(_ sequence: Int) -> EventData {
            // Hex is poorly compressible, so the stream file grows about as fast as the journal.
            let pad = (0..<1000).map { _ in String(random.next() & 0xFF, radix: 16) }.joined()
            return EventData(type: "Fill", json: #"{"stream":"fill","seq":\#(sequence),"pad":"\#(pad)"}"#)
        }
        var errors = 0
        var sequence = 0
        // A first event read back at once: the splitter writes it for the reader into
        // a split segment, so the stream's records go through the segments and the
        // mover from then on — the path where only the mover meets the limit and
        // the segments must stop growing (see `Splitter.checkSegmentRoom`).
        sequence += 1
        let first = event(sequence)
        let firstResult = try await store.append(to: "fill", events: [first])
        CrashWriter.writeLine(Acknowledgement(stream: "fill", firstVersion: firstResult.firstVersion, firstPosition: firstResult.firstPosition, ids: [first.id]).line)
        _ = try await store.read(stream: "fill").collect()
        while errors < 3 && sequence < 50_000 {
            sequence += 1
            let e = event(sequence)
            do {
                let result = try await store.append(to: "fill", events: [e])
                CrashWriter.writeLine(Acknowledgement(stream: "fill", firstVersion: result.firstVersion, firstPosition: result.firstPosition, ids: [e.id]).line)
            } catch {
                errors += 1
                CrashWriter.writeLine("ERROR \(String(describing: error).replacingOccurrences(of: "\n", with: " "))\n")
            }
        }
        watch.cancel()
        if let failure = await watch.value {
            CrashWriter.writeLine("SPLITTER \(String(describing: failure).replacingOccurrences(of: "\n", with: " "))\n")
        }
        try setLimit(UInt64.max)
        store.setJournalFullWait(.seconds(60))  // appends now wait for the splitter to catch up
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(120)
        var recovered = 0
        while recovered < 10 {
            sequence += 1
            let e = event(sequence)
            do {
                let result = try await store.append(to: "fill", events: [e])
                CrashWriter.writeLine(Acknowledgement(stream: "fill", firstVersion: result.firstVersion, firstPosition: result.firstPosition, ids: [e.id]).line)
                recovered += 1
            } catch {
                if clock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        CrashWriter.writeLine("RECOVERED\n")
        try await store.close()
    }

    /// Sets the soft limit (the hard limit stays as it is, so lifting it again needs no privilege).
    private static func setLimit(_ bytes: UInt64) throws {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 else {
            throw RingstoreError(.ioError, "getrlimit(RLIMIT_FSIZE) failed: \(String(cString: strerror(errno)))")
        }
        limit.rlim_cur = min(rlim_t(bytes), limit.rlim_max)
        guard setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 else {
            throw RingstoreError(.ioError, "setrlimit(RLIMIT_FSIZE, \(bytes)) failed: \(String(cString: strerror(errno)))")
        }
    }
}
