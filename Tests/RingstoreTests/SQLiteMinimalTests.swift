import Foundation
import GRDB
import Testing
@testable import RingstoreBench

/// The minimal SQLite program of `ringstore bench --peer-check`: it appends what
/// was asked, gap-free, at the durability asked for, and the report shows it
/// beside the peer.
@Suite struct SQLiteMinimalTests {
    @Test func appendsEveryEventOfEveryWriter() async throws {
        let folder = TemporaryDirectory()
        let workload = Workload(streams: 20, events: 301, writers: 4, batch: 2)
        let result = try await SQLiteMinimal.run(workload, at: folder.child("events.sqlite"))
        #expect(result.system == "sqlite-minimal")
        #expect(result.events == 301 && result.payloadBytes == 301 * 200)
        // Quotas 76, 75, 75, 75 at 2 per append: 38 appends each.
        #expect(result.appends == 4 * 38)
        #expect(result.seconds > 0 && abs(result.eventsPerSecond - 301 / result.seconds) <= result.eventsPerSecond * 1e-9)
        #expect(result.latencyMs == nil && result.flushes == nil && result.bytesWritten == nil && result.readerWaitMsP99 == nil)

        let pool = try DatabasePool(path: folder.child("events.sqlite"))
        defer { try? pool.close() }
        let (rows, streams, gapFree) = try await pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events"),
             try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT stream) FROM events"),
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (SELECT stream FROM events GROUP BY stream HAVING MAX(version) + 1 != COUNT(*))") == 0)
        }
        #expect(rows == 301 && (streams ?? 0) >= 4 && (streams ?? 99) <= 20 && gapFree)
    }

    /// The writers stop at the deadline (a loaded machine may start them after
    /// it, so no event count is promised); what they appended is all there, as
    /// `run` checks the table before it returns.
    @Test func aDurationBoundsTheRun() async throws {
        let folder = TemporaryDirectory()
        let result = try await SQLiteMinimal.run(Workload(streams: 8, events: nil, writers: 2, durability: .relaxed, duration: 0.2),
                                                 at: folder.child("events.sqlite"))
        #expect(result.seconds >= 0.2 && result.appends == result.events)
    }

    /// The writer connection commits at the asked level: FULL (2) syncs the WAL
    /// on every commit, NORMAL (1) only at checkpoints.
    @Test(arguments: [(Workload.Durability.durable, 2), (.relaxed, 1)])
    func writerCommitsAtTheAskedSynchronousLevel(durability: Workload.Durability, level: Int) async throws {
        let folder = TemporaryDirectory()
        let pool = try await SQLiteMinimal.create(at: folder.child("events.sqlite"), durability: durability)
        defer { try? pool.close() }
        #expect(try await pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == level)
    }

    /// Why the minimal program sets `synchronous` after opening the pool: set in
    /// `prepareDatabase`, GRDB's `DatabasePool` turns the writer back to NORMAL
    /// when it enables WAL, so a "durable" program would not sync its commits
    /// (the README's performance notes). If GRDB changes this, those notes need
    /// another look.
    @Test func poolResetsSynchronousSetInPrepareDatabase() async throws {
        let folder = TemporaryDirectory()
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: folder.child("events.sqlite"), configuration: configuration)
        defer { try? pool.close() }
        #expect(try await pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 1)
        #expect(try await pool.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
    }

    @Test func reportShowsTheMinimalProgramBesideThePeer() throws {
        func result(_ system: String, _ rate: Double, measured: Bool) -> SystemResult {
            SystemResult(system: system, events: Int(rate), appends: Int(rate), seconds: 1, eventsPerSecond: rate,
                         megabytesPerSecond: rate * 200 / 1e6,
                         latencyMs: measured ? .init(p50: 1, p99: 2, p999: 3) : nil, readerWaitMsP99: measured ? 0.5 : nil,
                         readerProbes: measured ? 10 : nil, flushes: measured ? 5 : nil, flushesPerSecond: measured ? 5 : nil,
                         payloadBytes: UInt64(rate) * 200, bytesWritten: measured ? 1000 : nil,
                         bytesWrittenPerPayloadByte: measured ? 2 : nil, storageWriteBytes: nil, storageWriteBytesPerPayloadByte: nil,
                         peakRSSBytes: 1 << 20, journalFullWaits: nil, read: nil, subscription: nil)
        }
        let report = BenchReport(workload: Workload(events: 1000), compare: "sqlite", compareEvents: 500, peerCheck: true,
                                 results: [result("ringstore", 90_000, measured: true), result("sqlite", 4_500, measured: true),
                                           result("sqlite-minimal", 5_000, measured: false)])
        #expect(report.ratio == 20 && report.peerRatio == 0.9)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(json["ratio"] as? Double == 20 && json["peerRatio"] as? Double == 0.9)
        #expect((json["workload"] as? [String: Any])?["peerCheck"] as? Bool == true)
        let table = report.table()
        #expect(table.contains("peer check (sqlite events/s over sqlite-minimal's): 0.90×"))
        #expect(table.contains("ratio (ringstore events/s over sqlite's): 20.0×"))
        let latencyRow = try #require(table.split(separator: "\n").first { $0.hasPrefix("append p99 ") })
        #expect(latencyRow.hasSuffix("n/a"))
        // Without the check there is no peerRatio key, and ratio is still there.
        let plain = BenchReport(workload: Workload(events: 1000), compare: "sqlite", compareEvents: 500,
                                results: [result("ringstore", 90_000, measured: true), result("sqlite", 4_500, measured: true)])
        let plainJSON = try plain.json()
        #expect(plain.peerRatio == nil && !plainJSON.contains("peerRatio"))
    }
}
