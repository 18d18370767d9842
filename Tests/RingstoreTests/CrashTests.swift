import Foundation
import Testing
import RingstoreCrashTesting
@testable import Ringstore

/// Kills a writing process with SIGKILL at random moments and checks that every
/// acknowledged event survives exactly once, at the version and position it was
/// acknowledged with, across several crashed sessions of the same store.
@Suite struct CrashTests {
    /// The `ringstore-torture` binary, built beside this test bundle.
    static var tortureExecutable: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        // On Linux the tests run from `<products>/<Package>PackageTests.xctest`.
        if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("ringstore-torture").path) {
            directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")
        }
        return directory.appendingPathComponent("ringstore-torture").path
    }

    /// The writer's lines come back as written; a last line cut by the kill
    /// and lines of other kinds are left out; a stream name may hold spaces.
    @Test func theWritersLinesParseBack() {
        let ids = [UUID(), UUID()]
        let sending = Sending(writer: 3, firstSequence: 17, ids: ids, stream: "a stream")
        let ack = Acknowledgement(stream: "a stream", firstVersion: 4, firstPosition: 1_024, ids: ids)
        let other = Sending(writer: 1, firstSequence: 1, ids: [UUID()], stream: "b")
        let output = "READY\n" + sending.line + ack.line + String(other.line.dropLast(3))
        #expect(Sending.parse(output) == [sending])
        #expect(Acknowledgement.parse(output) == [ack])
        #expect(Sending.parse(output + "\n").count == 1, "a cut line stays cut")
        #expect(sending.events.map(\.id) == ids)
        #expect(sending.events.map(\.data) == [CrashWriter.payload(stream: "a stream", writer: 3, sequence: 17),
                                                CrashWriter.payload(stream: "a stream", writer: 3, sequence: 18)])
    }

    /// Durable mode with a journal large enough that nothing wraps; relaxed mode;
    /// and a 1 MiB journal that wraps every few milliseconds, so the kill lands
    /// in the middle of splitting and checkpointing.
    @Test(arguments: [(false, 32), (true, 32), (false, 1)])
    func everyAcknowledgedEventSurvivesSIGKILL(relaxed: Bool, journalMB: Int) async throws {
        let executable = Self.tortureExecutable
        try #require(FileManager.default.isExecutableFile(atPath: executable), "build ringstore-torture first: \(executable)")
        let root = TemporaryDirectory()
        var configuration = Configuration()
        configuration.journalCapacity = UInt64(journalMB) << 20
        configuration.maxEventSize = Int(min(UInt64(configuration.maxEventSize), configuration.journalCapacity / 4))
        var random = SeededRandom(seed: relaxed ? 99 : UInt64(20 + journalMB))
        let rounds = relaxed ? 6 : 20
        var acknowledgements: [Acknowledgement] = []
        var totalAcknowledged = 0
        var retried = 0
        for round in 0..<rounds {
            let store = root.child("store-\(round / 5)")
            if round % 5 == 0 { acknowledgements = [] }
            let delay = Duration.milliseconds(Int(random.next() % 300))
            var arguments = ["writer", "--dir", store, "--writers", "32", "--streams", "40", "--max-batch", "4",
                             "--seed", "\(random.next())", "--journal-mb", "\(journalMB)"]
            if relaxed { arguments.append("--relaxed") }
            let outcome = try CrashRound.run(executable: executable, arguments: arguments, killDelay: delay, scratch: root.path)
            #expect(outcome.terminationSignal == SIGKILL)
            #expect(!outcome.acknowledgements.isEmpty, "round \(round): the writer acknowledged nothing before the kill")
            acknowledgements += outcome.acknowledgements
            totalAcknowledged += outcome.acknowledgements.count
            let report = try await CrashVerifier.verify(directory: store, configuration: configuration, acknowledgements: acknowledgements,
                                                        sendings: outcome.sendings)
            acknowledgements += report.retried
            retried += report.retriesRecognised + report.retriesStored
            #expect(report.problems.isEmpty, "round \(round): \(report.problems.prefix(5))")
            #expect(report.storedEvents >= report.acknowledgedEvents)
        }
        #expect(totalAcknowledged > rounds * 10)
        #expect(retried > 0, "no append was left unanswered by a kill")
    }

    /// A writer whose splitter is held fills the whole ring after the
    /// checkpoint and is killed with appends waiting for space: the reopen
    /// replays a full journal (the wrapped end included, from the second
    /// round on) and keeps every acknowledged event.
    @Test func aKillWithTheRingFullKeepsEveryAcknowledgedEvent() async throws {
        let executable = Self.tortureExecutable
        try #require(FileManager.default.isExecutableFile(atPath: executable), "build ringstore-torture first: \(executable)")
        let root = TemporaryDirectory()
        var configuration = Configuration()
        configuration.journalCapacity = 1 << 20
        configuration.maxEventSize = Int(configuration.journalCapacity / 4)
        var acknowledgements: [Acknowledgement] = []
        let store = root.child("store")
        for round in 0..<3 {
            let arguments = ["writer", "--dir", store, "--writers", "16", "--streams", "40", "--max-batch", "4",
                             "--seed", "\(70 + round)", "--journal-mb", "1", "--hold-split"]
            let outcome = try CrashRound.run(executable: executable, arguments: arguments, killDelay: .milliseconds(20),
                                             startingAt: CrashWriter.ringFullLine, scratch: root.path)
            #expect(outcome.markerSeen, "round \(round): the ring never filled")
            #expect(outcome.terminationSignal == SIGKILL)
            acknowledgements += outcome.acknowledgements
            let report = try await CrashVerifier.verify(directory: store, configuration: configuration, acknowledgements: acknowledgements,
                                                        sendings: outcome.sendings)
            acknowledgements += report.retried
            #expect(report.problems.isEmpty, "round \(round): \(report.problems.prefix(5))")
            // At least 99 % of the ring, in records of about 150 bytes, was replayed.
            #expect(report.recoveredEvents * 200 > Int(configuration.journalCapacity) * 99 / 100,
                    "round \(round): \(report.recoveredEvents) events replayed")
        }
    }
}
