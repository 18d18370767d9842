import ArgumentParser
import Foundation
import Ringstore
import RingstoreCrashTesting

/// Crash torture for Ringstore: kills a writing process with SIGKILL at random
/// moments, or (`--power-loss`) cuts a simulated power supply under an
/// in-process store, and checks that every acknowledged event survives exactly once.
@main
struct Torture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringstore-torture",
        abstract: "Kill a writing process with SIGKILL (or cut a simulated power supply) at random moments and verify the store afterwards.",
        subcommands: [Run.self, Writer.self, FileSizeLimit.self, FailedOpen.self],
        defaultSubcommand: Run.self)

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run crash (or power-loss) rounds and report rounds, events acknowledged and verified, and any loss.",
            discussion: """
                With --power-loss, each round runs writers and readers in this process under a \
                simulated disk, cuts the power at a random moment of ingest, split, checkpoint or close \
                (unsynced writes lost whole, torn at 512-byte sectors, or kept while earlier ones are \
                lost; unsynced directory entries lost), reopens the store from what the cut left and \
                checks it: in durable mode no acknowledged event may be missing, in relaxed mode only \
                those the journal had not yet made durable. Rounds chain over one store \
                (--rounds-per-store, default 10 there).


                Each round starts a writer process, lets it append for a random time and kills it \
                with SIGKILL; the store is then reopened and checked against every acknowledged \
                append. The default 1 MiB journal wraps many times per round, so kills land while \
                the splitter is copying records into stream files and checkpointing. (Kills during \
                `ringstore-admin compact` are covered by its own tests.)
                """)

        @Option(help: "Number of kill-and-verify rounds.") var rounds = 100
        @Option(help: "Concurrent writers in the killed process (default 32; 6 with --power-loss).") var writers: Int?
        @Option(help: "Streams to spread appends over (not with --power-loss, whose workload has its own).") var streams = 50
        @Option(help: "Most events in one append (default 5; with --power-loss each store draws 5 or 50).") var maxBatch: Int?
        @Option(help: "Longest run before a kill, in milliseconds.") var maxKillDelayMs = 500
        @Option(help: "Rounds that share one store before a fresh one is made (default 5; 10 with --power-loss).") var roundsPerStore: Int?
        @Option(help: "Seed for the kill schedule and the writers.") var seed: UInt64 = 1
        @Option(help: "Journal size in MiB (small, so the ring wraps and the splitter checkpoints during every round).") var journalMb: UInt64 = 1
        @Flag(help: "Run the writer in relaxed durability mode.") var relaxed = false
        @Flag(help: "Simulate power cuts in this process instead of killing a writer process.") var powerLoss = false
        @Flag(help: "Hold the writer's splitter so that the ring fills with records after the checkpoint, and kill it once the ring is full: each reopen replays a whole journal (use with --journal-mb 64 for the default size).") var fullRing = false
        @Flag(inversion: .prefixedNo, help: "Move small streams into shared bucket files (Configuration.streamBuckets, on by default).") var streamBuckets = true
        @Option(help: "With --power-loss: seconds a round may wait for the ring to wrap, for its cut, or for the store to close before it reports a hang.") var roundTimeout = 60
        @Option(help: "Folder for the stores (default: a new temporary folder, removed afterwards).") var dir: String?

        func run() async throws {
            let root = dir ?? NSTemporaryDirectory() + "ringstore-torture-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
            if powerLoss { return try await runPowerLoss(root: root) }
            let writers = self.writers ?? 32
            let roundsPerStore = self.roundsPerStore ?? 5
            var configuration = Configuration()
            configuration.journalCapacity = journalMb << 20
            configuration.maxEventSize = Int(min(UInt64(configuration.maxEventSize), configuration.journalCapacity / 4))
            configuration.streamBuckets = streamBuckets
            let executable = CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : Bundle.main.executablePath!
            var random = SeededRandom(seed: seed)
            var totals = (acknowledged: 0, verified: 0, unacknowledged: 0, lost: 0, problems: 0, replayed: 0, retriesRecognised: 0, retriesStored: 0)
            var maxLaps = 0.0
            var openDurations: [Duration] = []
            var acknowledgements: [Acknowledgement] = []
            for round in 0..<rounds {
                let store = "\(root)/store-\(round / roundsPerStore)"
                if round % roundsPerStore == 0 { acknowledgements = [] }
                let delay = Duration.milliseconds(Int(random.next() % UInt64(maxKillDelayMs)))
                let outcome = try CrashRound.run(
                    executable: executable,
                    arguments: ["writer", "--dir", store, "--writers", "\(writers)", "--streams", "\(streams)",
                                "--max-batch", "\(maxBatch ?? 5)", "--seed", "\(random.next())", "--journal-mb", "\(journalMb)"]
                        + (relaxed ? ["--relaxed"] : []) + (streamBuckets ? [] : ["--no-stream-buckets"])
                        + (fullRing ? ["--hold-split"] : []),
                    killDelay: delay, startingAt: fullRing ? CrashWriter.ringFullLine : "ACK ", scratch: root)
                acknowledgements += outcome.acknowledgements
                let report = try await CrashVerifier.verify(directory: store, configuration: configuration, acknowledgements: acknowledgements,
                                                            sendings: outcome.sendings)
                acknowledgements += report.retried
                totals.retriesRecognised += report.retriesRecognised
                totals.retriesStored += report.retriesStored
                totals.acknowledged += outcome.acknowledgements.reduce(0) { $0 + $1.ids.count }
                totals.verified += report.acknowledgedEvents
                totals.unacknowledged += report.unacknowledgedEvents
                totals.problems += report.problems.count
                totals.lost += report.lostEvents
                totals.replayed += report.recoveredEvents
                let laps = Double(report.journalEnd) / Double(report.journalCapacity)
                maxLaps = max(maxLaps, laps)
                openDurations.append(report.openDuration)
                print("round \(round + 1)/\(rounds): killed after \(outcome.killedAfter), \(outcome.acknowledgements.count) appends acknowledged, store holds \(report.storedEvents) events, journal at \(String(format: "%.1f", laps)) laps, \(report.recoveredEvents) events replayed, reopened in \(milliseconds(report.openDuration)), unanswered appends retried: \(report.retriesRecognised) found stored, \(report.retriesStored) stored now, \(report.problems.count) problems")
                for problem in report.problems.prefix(10) { print("  PROBLEM: \(problem)") }
            }
            print("rounds: \(rounds), events acknowledged: \(totals.acknowledged), acknowledged events verified (cumulative per store): \(totals.verified), acknowledged events lost: \(totals.lost), present but unacknowledged: \(totals.unacknowledged), events replayed by recovery: \(totals.replayed), unanswered appends retried: \(totals.retriesRecognised) found stored and \(totals.retriesStored) stored now, journal laps (largest store): \(String(format: "%.1f", maxLaps)), reopening: median \(milliseconds(openDurations.isEmpty ? .zero : openDurations.sorted()[openDurations.count / 2])), longest \(milliseconds(openDurations.max() ?? .zero)), problems: \(totals.problems)")
            if totals.problems > 0 { throw ExitCode(1) }
        }

        private func milliseconds(_ duration: Duration) -> String {
            String(format: "%.1f ms", Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15)
        }

        /// `--power-loss`: rounds of simulated power cuts (see ``PowerLossRounds``).
        func runPowerLoss(root: String) async throws {
            var options = PowerLossRounds.Options()
            options.rounds = rounds
            options.relaxed = relaxed
            options.streamBuckets = streamBuckets
            options.journalCapacity = journalMb << 20
            options.roundsPerStore = roundsPerStore ?? 10
            options.seed = seed
            options.workload.writers = writers ?? 6
            // Appends of up to 50 events make large streams, written straight into new files,
            // and chains the segment mover copies: two defects showed only with them.
            options.maxBatchChoices = maxBatch.map { [$0] } ?? [5, 50]
            options.timeout = .seconds(roundTimeout)
            // Written at once (not through stdio's buffer), so a redirected run shows each round as it ends.
            func line(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
            let totals = try await PowerLossRounds.run(options, root: root) { line($0) }
            for problem in totals.problems.prefix(50) { line("PROBLEM: \(problem)") }
            line("power loss, \(relaxed ? "relaxed" : "durable") mode\(streamBuckets ? "" : ", a file per stream"), seed \(seed): \(totals.summary)")
            if !totals.problems.isEmpty { throw ExitCode(1) }
        }
    }

    struct Writer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Append forever and print one ACK line per acknowledged append (the process that gets killed).")

        @Option(help: "Store folder.") var dir: String
        @Option var writers = 32
        @Option var streams = 50
        @Option var maxBatch = 5
        @Option var seed: UInt64 = 1
        @Option var journalMb: UInt64 = 64
        @Flag(help: "Open the store in relaxed mode.") var relaxed = false
        @Flag(inversion: .prefixedNo, help: "Move small streams into shared bucket files (on by default).") var streamBuckets = true
        @Flag(help: "Hold the splitter (nothing split or checkpointed) and print RING FULL once the ring is nearly full.") var holdSplit = false

        func run() async throws {
            var configuration = Configuration()
            configuration.journalCapacity = journalMb << 20
            configuration.maxEventSize = Int(min(UInt64(configuration.maxEventSize), configuration.journalCapacity / 4))
            if relaxed { configuration.durability = .relaxed }
            configuration.streamBuckets = streamBuckets
            try await CrashWriter.run(directory: dir, configuration: configuration, writers: writers, streams: streams,
                                      maxBatch: maxBatch, seed: seed, holdSplit: holdSplit)
        }
    }

    struct FileSizeLimit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "file-size-limit",
            abstract: "Ingest under RLIMIT_FSIZE until stream files hit the limit, lift it, and go on (the disk-full test's child process).")

        @Option(help: "Store folder.") var dir: String
        @Option(help: "Largest file this process may write, in bytes (above the journal's size).") var limitBytes: UInt64 = 3 << 20

        func run() async throws {
            try await FileSizeLimitScenario.run(directory: dir, limitBytes: limitBytes)
        }
    }

    struct FailedOpen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "failed-open",
            abstract: "Open a store whose catalog is a directory many times and report threads, descriptors and mappings before and after (the failed-open test's child process).")

        @Option(help: "Store folder.") var dir: String
        @Option(help: "Failed opens to make.") var attempts = 20

        func run() async throws {
            try await FailedOpenScenario.run(directory: dir, attempts: attempts)
        }
    }
}
