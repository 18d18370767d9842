import Foundation
@_spi(PowerLossTesting) import Ringstore
import Synchronization

/// Power-loss rounds: a store written by concurrent writers and readers loses
/// power at a random moment (see ``PowerLossSimulation``), is reopened from
/// what the cut left, and is checked against everything it acknowledged.
///
/// Rounds chain: each reopens the directory the previous cut left, under a new
/// simulation, so recovery itself runs under the next cut's threat, until
/// `roundsPerStore` rounds have shared a store. Each round first lets the
/// workload append a whole journal's worth (so the ring wraps and checkpoints
/// run), then arms the cut for a random moment: while the journal is written
/// (ingest), while stream files, the catalog and the global index are written
/// (split), while a checkpoint syncs (checkpoint), during `close()` (close), or
/// at any operation.
public enum PowerLossRounds {
    public struct Options: Sendable {
        public var rounds = 100
        public var relaxed = false
        /// Small streams move into shared bucket files (``Configuration/streamBuckets``).
        public var streamBuckets = true
        public var journalCapacity: UInt64 = 1 << 20
        public var roundsPerStore = 10
        public var seed: UInt64 = 1
        public var workload = PowerLossWorkload.Settings()
        /// Each store draws its workload's most events per append from these
        /// (empty: `workload.maxBatch` for all).
        public var maxBatchChoices: [Int] = []
        /// How long a round waits for the ring to wrap, for its cut, and for the
        /// store to close, before it reports a hang.
        public var timeout: Duration = .seconds(60)

        public init() {}
    }

    /// Where the cut lands.
    public enum Moment: String, CaseIterable, Sendable {
        case ingest, split, checkpoint, close, anytime
    }

    public struct Totals: Sendable {
        public var rounds = 0
        public var acknowledgedAppends = 0
        /// Acknowledged events checked after a reopen.
        public var acknowledgedEvents = 0
        /// Acknowledged events missing where that is not allowed (must be 0).
        public var lostEvents = 0
        /// Relaxed mode: acknowledged events missing that the journal had not made durable.
        public var missingAllowed = 0
        public var oldestMissingAge: Duration?
        public var unacknowledgedPresent = 0
        /// Appends sent again after a reopen with the same IDs and expected version
        /// (see `PowerLossRetries`): answered from what was stored, stored, refused.
        public var retriesRecognised = 0
        public var retriesStored = 0
        public var retriesRefused = 0
        public var problems: [String] = []
        @_spi(PowerLossTesting) public var dropped: PowerLossReport?
        public var moments: [String: Int] = [:]
        public var mostJournalLaps = 0.0
        /// Rounds in which checkpoints waited for the segment mover (the segments
        /// past their limit) before the cut.
        public var roundsWithSegmentHolds = 0

        public var summary: String {
            let dropped = self.dropped.map { d in
                "\(d.writesLost) of \(d.unsyncedWrites) unsynced writes lost and \(d.writesTorn) torn (\(d.bytesLost) of \(d.unsyncedBytes) bytes), \(d.truncatesLost) of \(d.unsyncedTruncates) truncations and \(d.directoryChangesLost) of \(d.unsyncedDirectoryChanges) directory changes lost"
            } ?? "nothing"
            let moments = self.moments.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "rounds: \(rounds) (cuts during \(moments)), appends acknowledged: \(acknowledgedAppends), acknowledged events verified: \(acknowledgedEvents), lost: \(lostEvents)"
                + ", missing but never made durable (relaxed): \(missingAllowed)"
                + (oldestMissingAge.map { " (the oldest acknowledged \(Self.milliseconds($0)) ms before the cut)" } ?? "")
                + ", present but unacknowledged: \(unacknowledgedPresent)"
                + ", retries after a reopen: \(retriesRecognised) recognised, \(retriesStored) stored, \(retriesRefused) refused"
                + ", journal laps per store: up to \(String(format: "%.1f", mostJournalLaps))"
                + ", rounds with checkpoints held for the segment mover: \(roundsWithSegmentHolds)"
                + "; the simulation dropped: \(dropped); problems: \(problems.count)"
        }

        mutating func add(_ retries: PowerLossRetries.Outcome) {
            retriesRecognised += retries.recognised
            retriesStored += retries.stored
            retriesRefused += retries.refused
        }

        static func milliseconds(_ duration: Duration) -> Int {
            let (seconds, attoseconds) = duration.components
            return Int(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        }
    }

    /// Runs the rounds in folders under `root` (which must exist), calling `log` with one line per round.
    public static func run(_ options: Options, root: String, log: (String) -> Void) async throws -> Totals {
        var random = SeededRandom(seed: options.seed)
        var totals = Totals()
        var ledger = PowerLossLedger()
        var chain = 0
        var roundInChain = 0
        var current = "\(root)/chain-0-round-0"
        var storeLaps = 0.0
        var maxOpenFiles = 256
        var maxBatch = options.workload.maxBatch
        let lastCut = "\(root)/last-cut"
        try FileManager.default.createDirectory(atPath: current, withIntermediateDirectories: false)
        let mode = options.relaxed ? "relaxed" : "durable"

        for round in 0..<options.rounds {
            if roundInChain == options.roundsPerStore {
                await verifyWithoutSimulation(current, ledger: &ledger, options: options, totals: &totals, random: &random, label: "chain \(chain) end")
                try? FileManager.default.removeItem(atPath: current)
                chain += 1
                roundInChain = 0
                storeLaps = 0
                ledger = PowerLossLedger()
                current = "\(root)/chain-\(chain)-round-\(round)"
                try FileManager.default.createDirectory(atPath: current, withIntermediateDirectories: false)
            }
            if roundInChain == 0 {
                maxOpenFiles = random.next() % 2 == 0 ? 8 : 256  // 8: evictions, so checkpoints use syncfs
                if !options.maxBatchChoices.isEmpty {
                    maxBatch = options.maxBatchChoices[Int(random.next() % UInt64(options.maxBatchChoices.count))]
                }
            }
            totals.rounds += 1
            var configuration = Configuration()
            configuration.journalCapacity = options.journalCapacity
            configuration.maxEventSize = Int(options.journalCapacity / 8)
            configuration.maxOpenFiles = maxOpenFiles
            configuration.streamBuckets = options.streamBuckets
            // Small split-segment budgets: the mover moves segments into stream files and
            // deletes them within the round, so cuts land in those moves too.
            configuration.splitSegmentBudget = [64 << 10, 256 << 10, nil].randomElement(using: &random)!
            // Short: after the cut the splitter is dead, and readers and appends waiting
            // for it would hold up the round for this long (before it, a timeout is
            // only counted, not a problem).
            configuration.journalFullWait = .seconds(5)
            configuration.readerWait = .seconds(2)
            if options.relaxed {
                configuration.durability = .relaxed(flushInterval: [.milliseconds(10), .milliseconds(100), .seconds(1)].randomElement(using: &random)!)
            }
            var problems: [String] = []
            // The offline verifier on the store as the cut left it, before anything opens it:
            // what a cut leaves must be harmless (`ringstore-admin verify` exits 0 on it).
            if roundInChain > 0 {
                do {
                    let session = try MaintenanceSession(directory: current)
                    problems += session.verify().problems.prefix(10).map { "verify before the reopen: \($0)" }
                    session.close()
                } catch {
                    problems.append("verify before the reopen failed: \(error)")
                }
            }

            let simulation = try PowerLossSimulation.install(root: current)
            let store: EventStore
            do {
                store = try await EventStore.open(at: current, configuration: configuration, logger: .powerLossTesting)
            } catch {
                simulation.uninstall()
                totals.problems.append("round \(round + 1): reopening after the cut failed: \(error)")
                log("round \(round + 1)/\(options.rounds) [\(mode)]: PROBLEM: reopening after the cut failed: \(error)")
                roundInChain = options.roundsPerStore  // start a new store
                ledger = PowerLossLedger()
                continue
            }
            var verified = ""
            let recorder = PowerLossRecorder()
            if roundInChain > 0 {
                let (outcome, retries) = await verify(store, ledger: &ledger, relaxed: options.relaxed, recorder: recorder, random: &random,
                                                      totals: &totals, problems: &problems)
                if !outcome.problems.isEmpty || !problems.isEmpty {
                    let kept = "\(root)/as-cut-before-round-\(round + 1)"
                    if (try? FileManager.default.moveItem(atPath: lastCut, toPath: kept)) != nil {
                        problems.append("the store as the cut left it is kept in \(kept)")
                    }
                }
                verified = "reopened: \(outcome.storedEvents) events stored, \(outcome.acknowledgedEvents) acknowledged checked, \(outcome.lostEvents) lost"
                    + (options.relaxed ? ", \(outcome.missingAllowed) missing but never durable" : "")
                    + ", \(outcome.unacknowledgedPresent) unacknowledged present, \(outcome.deletedStreams) streams tombstoned"
                    + ", retries: \(retries.recognised) recognised, \(retries.stored) stored, \(retries.refused) refused; "
            }
            let knownStreams = ledger.confirmed.keys.sorted()
            var fresh = ["fresh-\(round)"]
            for _ in 0..<min(3, knownStreams.count) { fresh.append(knownStreams.randomElement(using: &random)!) }
            problems += await PowerLossVerifier.appendAndReadBack(store, streams: Array(Set(fresh)).sorted(), recorder: recorder, random: &random)

            // Let a whole journal's worth be appended, so the ring wraps and checkpoints run.
            let start = store.stats().writtenPosition
            var settings = options.workload
            settings.seed = random.next()
            settings.maxBatch = maxBatch
            let workload = PowerLossWorkload(store: store, settings: settings, recorder: recorder, isCut: { simulation.isCut })
            // A slow machine may take longer than `timeout` in all: only a whole `timeout`
            // without one more acknowledged append is a hang.
            var acknowledgedBefore = recorder.acknowledgedCount
            while !(await finishes(within: options.timeout) { await recorder.waitForAcknowledgement(past: start + options.journalCapacity) }) {
                recorder.cancelWait()
                let acknowledged = recorder.acknowledgedCount
                if acknowledged == acknowledgedBefore {
                    problems.append("the workload acknowledged no append for \(options.timeout) before a journal's worth was appended")
                    break
                }
                acknowledgedBefore = acknowledged
            }

            let moment = Moment.allCases.randomElement(using: &random)!
            totals.moments[moment.rawValue, default: 0] += 1
            var closed: Bool
            if moment == .close {
                if !(await workload.stop(timeout: options.timeout)) {
                    problems.append("calls hung before the close: \(workload.unfinished.joined(separator: "; "))")
                }
                simulation.cut(afterOperations: Int(random.next() % 80) + 1)
                closed = await finishes(within: options.timeout) { try? await store.close() }
                simulation.cut()  // if the close finished first: a cut after a clean close
            } else {
                arm(simulation, for: moment, random: &random)
                if !(await simulation.waitForCut(timeout: options.timeout)) { simulation.cut() }
                // Closed at once, as the tasks stop: what the store does after the cut does not
                // count, and appends staged while the journal's failed write is retried wait
                // for the close (see the report of the journal writer's retry).
                workload.requestStop()
                closed = await finishes(within: options.timeout) { try? await store.close() }
                if !(await workload.stop(timeout: options.timeout)) {
                    problems.append("calls hung after the cut and the close: \(workload.unfinished.joined(separator: "; "))")
                }
            }
            if !closed { problems.append("close() hung after the cut") }
            ledger.cutAt = simulation.cutTime
            let stats = store.stats()
            ledger.durableAtCut = stats.durablePosition
            ledger.attempts = recorder.all
            ledger.tombstones = recorder.tombstones
            problems += workload.problems
            problems += simulation.untrackedFiles.map { "a file changed outside the storage seam: \($0)" }
            let acknowledged = ledger.attempts.filter { $0.result != nil }.count
            totals.acknowledgedAppends += acknowledged
            storeLaps += Double(stats.writtenPosition - start) / Double(options.journalCapacity)
            totals.mostJournalLaps = max(totals.mostJournalLaps, storeLaps)
            if stats.splitSegmentHolds > 0 { totals.roundsWithSegmentHolds += 1 }

            let next = "\(root)/chain-\(chain)-round-\(round + 1)"
            let cutSeed = random.next()
            let report = try simulation.materialise(into: next, seed: cutSeed)
            // A second copy of what the cut left, kept if the next round finds a problem.
            try? FileManager.default.removeItem(atPath: lastCut)
            _ = try simulation.materialise(into: lastCut, seed: cutSeed)
            simulation.uninstall()
            if totals.dropped == nil { totals.dropped = report } else { totals.dropped!.add(report) }
            try? FileManager.default.removeItem(atPath: current)
            current = next
            roundInChain += 1

            totals.problems += problems.map { "round \(round + 1): \($0)" }
            log("round \(round + 1)/\(options.rounds) [\(mode), store \(chain), \(maxOpenFiles) open files, up to \(maxBatch) events an append]: \(verified)\(acknowledged) appends acknowledged; \(moment.rawValue) \(report)")
            for problem in problems.prefix(10) { log("  PROBLEM: \(problem)") }
        }
        await verifyWithoutSimulation(current, ledger: &ledger, options: options, totals: &totals, random: &random, label: "last round")
        try? FileManager.default.removeItem(atPath: current)
        return totals
    }

    /// Arms the simulation's cut at a random operation of the kind `moment` names.
    static func arm(_ simulation: PowerLossSimulation, for moment: Moment, random: inout SeededRandom) {
        switch moment {
        case .ingest:
            simulation.cut(afterOperations: Int(random.next() % 400) + 1) { $0.kind == .write && $0.path == "journal.ring" }
        case .split:
            simulation.cut(afterOperations: Int(random.next() % 200) + 1) { op in
                [.write, .truncate, .create, .makeDirectory, .remove].contains(op.kind)
                    && (op.path.hasPrefix("streams/") || op.path.hasPrefix("split/") || op.path == "global.index" || op.path == "streams.catalog")
            }
        case .checkpoint:
            simulation.cut(afterOperations: Int(random.next() % 25) + 1) { op in
                (op.kind == .syncFile && op.path != "journal.ring") || op.kind == .syncDirectory || op.kind == .syncFileSystem
                    || (op.kind == .write && op.path == "journal.ring" && (op.offset ?? .max) < 4096)  // the header
            }
        case .anytime, .close:
            simulation.cut(afterOperations: Int(random.next() % 3000) + 1)
        }
    }

    /// Checks a reopened store against the ledger, then sends the round's
    /// appends again as their clients would (``PowerLossRetries``; appends a
    /// retry stored are registered with `recorder`).
    private static func verify(_ store: EventStore, ledger: inout PowerLossLedger, relaxed: Bool, recorder: PowerLossRecorder,
                               random: inout SeededRandom, totals: inout Totals,
                               problems: inout [String]) async -> (outcome: PowerLossVerifier.Outcome, retries: PowerLossRetries.Outcome) {
        let sent = ledger.attempts
        let outcome: PowerLossVerifier.Outcome
        do {
            outcome = try await PowerLossVerifier.verify(store, ledger: &ledger, relaxed: relaxed)
            totals.acknowledgedEvents += outcome.acknowledgedEvents
            totals.lostEvents += outcome.lostEvents
            totals.missingAllowed += outcome.missingAllowed
            totals.unacknowledgedPresent += outcome.unacknowledgedPresent
            if let age = outcome.oldestMissingAge { totals.oldestMissingAge = max(totals.oldestMissingAge ?? .zero, age) }
            problems += outcome.problems
        } catch {
            problems.append("verification failed: \(error)")
            ledger.attempts = []
            return (PowerLossVerifier.Outcome(), PowerLossRetries.Outcome())
        }
        let retries = await PowerLossRetries.run(store, attempts: sent, recorder: recorder, random: &random)
        totals.add(retries)
        problems += retries.problems
        return (outcome, retries)
    }

    /// Reopens a chain's last store without a simulation and checks it.
    private static func verifyWithoutSimulation(_ directory: String, ledger: inout PowerLossLedger, options: Options,
                                                totals: inout Totals, random: inout SeededRandom, label: String) async {
        var configuration = Configuration()
        configuration.journalCapacity = options.journalCapacity
        configuration.maxEventSize = Int(options.journalCapacity / 8)
        if options.relaxed { configuration.durability = .relaxed }
        var problems: [String] = []
        do {
            let store = try await EventStore.open(at: directory, configuration: configuration, logger: .powerLossTesting)
            _ = await verify(store, ledger: &ledger, relaxed: options.relaxed, recorder: PowerLossRecorder(), random: &random,
                             totals: &totals, problems: &problems)
            problems += await PowerLossVerifier.appendAndReadBack(store, streams: ["fresh-last"], recorder: PowerLossRecorder(), random: &random)
            try await store.close()
        } catch {
            problems.append("reopening failed: \(error)")
        }
        totals.problems += problems.map { "\(label): \($0)" }
    }

    /// Runs `operation` in a task of its own; true if it returned within `timeout`
    /// (a hung operation is left running, and reported by the caller).
    public static func finishes(within timeout: Duration, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
        let once = OneShot()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            once.set(continuation)
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { once.resume(false) }
            }
            Task {
                await operation()
                once.resume(true)
                timer.cancel()
            }
        }
    }

    /// A continuation resumed by whichever of two tasks comes first.
    private final class OneShot: Sendable {
        private let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)
        func set(_ c: CheckedContinuation<Bool, Never>) { continuation.withLock { $0 = c } }
        func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
    }
}
