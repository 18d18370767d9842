import Foundation
import Testing
@testable import Ringstore

/// Compaction's rewrite on several threads writes the same store as on one:
/// every stream file, its index and the global index byte for byte, with the
/// entries routed through temporary files in many ranges of streams. (Each
/// thread's LZ4 state is cleared before each stream: see
/// ``LZ4Compressor/clearState()``.)
@Suite struct AdminParallelRewriteTests {
    @Test func severalThreadsWriteTheSameStoreAsOne() async throws {
        let dir = TemporaryDirectory()
        let single = dir.child("single")
        let parallel = dir.child("parallel")
        try await AdminFixture.build(at: single)
        try AdminFixture.copy(single, to: parallel)
        let before = try await AdminFixture.visible(at: single)
        var summaries: [CompactSummary] = []
        for (path, threads) in [(single, 1), (parallel, 4)] {
            let session = try MaintenanceSession(directory: path)
            summaries.append(try await session.compact(options: CompactOptions(memoryBudget: 4 << 10, threads: threads)))
            #expect(session.verify().problems.isEmpty)
            session.close()
        }
        #expect(summaries[0].threads == 1)
        #expect(summaries[1].threads > 1, "the system gave no second thread")
        #expect(summaries[1].streamRanges > 4, "\(summaries[1])")
        for key in [\CompactSummary.eventsAfter, \.streamsAfter, \.blocksAfter, \.blocksReused] {
            #expect(summaries[0][keyPath: key] == summaries[1][keyPath: key])
        }
        #expect(summaries[0].rewritableBytesAfter == summaries[1].rewritableBytesAfter)
        #expect(try await AdminFixture.visible(at: parallel) == before)
        try AdminFixture.expectSameStreamFiles(single, parallel)
    }
}
