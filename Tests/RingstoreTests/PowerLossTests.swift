import Foundation
import Testing
@_spi(PowerLossTesting) import RingstoreCrashTesting
@_spi(PowerLossTesting) @testable import Ringstore

/// A short run of the power-loss rounds `ringstore-torture --power-loss` runs
/// by the hundred: writers and readers, a 1 MiB journal wrapped every round, a
/// simulated power cut at a random moment of ingest, split, checkpoint or
/// close, a check of the reopened store against everything acknowledged, and
/// the appends in flight at the cut (and some acknowledged ones) sent again.
@Suite struct PowerLossTests {
    @Test(arguments: [false, true])
    func acknowledgedEventsSurvivePowerCuts(relaxed: Bool) async throws {
        let root = TemporaryDirectory()
        var options = PowerLossRounds.Options()
        options.rounds = 3
        options.roundsPerStore = 3
        options.relaxed = relaxed
        options.seed = relaxed ? 31 : 17
        options.workload.writers = 4
        let totals = try await PowerLossRounds.run(options, root: root.path) { _ in }
        #expect(totals.problems.isEmpty, "\(totals.problems.prefix(10))")
        #expect(totals.lostEvents == 0)
        #expect(totals.acknowledgedEvents > 0)
        #expect(totals.retriesRecognised > 0, "no retry after a reopen found its append stored")
        #expect((totals.dropped?.unsyncedWrites ?? 0) > 0, "the cuts found nothing unsynced to drop")
    }
}
