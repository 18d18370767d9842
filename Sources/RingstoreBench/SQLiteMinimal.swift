import Foundation
import GRDB
import Ringstore

/// The simplest GRDB program doing the SQLite peer's job (`ringstore bench
/// --peer-check`), run in the same process right after the peer so that the two
/// can be compared under the same load: if the peer (``SQLitePeer`` driven by
/// ``WorkloadRunner``) were much slower than this, the comparison with
/// Ringstore would flatter Ringstore.
///
/// `writers` tasks each loop `pool.write { SELECT MAX(version) FROM events
/// WHERE stream = ?; INSERT … }` with cached statements over their own
/// streams, on the same table, batching and payloads as the peer, and nothing
/// else: no reader, no latency recording, no WAL hook, no expected-version
/// bookkeeping (each transaction appends after whatever it finds). Only the
/// wall time of the loop is measured; what needs instrumentation (latency,
/// flushes, bytes written) is left out of its result.
///
/// Durability is set on the writer connection after the pool is open, and
/// checked: `PRAGMA synchronous = FULL` in `Configuration.prepareDatabase` does
/// not survive, because `DatabasePool` runs `prepareDatabase` first and then
/// switches the writer to WAL with `synchronous = NORMAL`, so a program that
/// sets it there commits without syncing the WAL (see the README's
/// performance notes).
public enum SQLiteMinimal {
    public static let name = "sqlite-minimal"

    /// Creates the database at `path` (which must not exist yet): the peer's
    /// table, WAL, and `synchronous` FULL (durable) or NORMAL (relaxed) on the
    /// writer connection, set after the pool is open and checked.
    static func create(at path: String, durability: Workload.Durability) async throws -> DatabasePool {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw BenchError("\(name): \(path) already exists; give a new path")
        }
        let pool = try DatabasePool(path: path)
        let synchronous = durability == .durable ? 2 : 1
        do {
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: SQLitePeer.createEventsTable)
                try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                let level = try Int.fetchOne(db, sql: "PRAGMA synchronous")
                guard level == synchronous else {
                    throw BenchError("\(name): could not set synchronous=\(synchronous) (got \(level ?? -1))")
                }
            }
        } catch {
            try? pool.close()
            throw error
        }
        return pool
    }

    /// Runs `workload` (its writers, streams, batch, event size, durability and
    /// event or time bound; not its reads, rate or warm-up) against a new
    /// database at `path`, which must not exist yet.
    public static func run(_ workload: Workload, at path: String) async throws -> SystemResult {
        try workload.validate()
        let pool = try await create(at: path, durability: workload.durability)
        defer { try? pool.close() }

        ProcessMeter.resetPeakResident()
        let storageBefore = ProcessMeter.storageWriteBytes
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = workload.duration.map { started + .milliseconds(Int64($0 * 1000)) }
        let counts = try await withThrowingTaskGroup(of: (appends: Int, events: Int).self) { group in
            for writer in 0..<workload.writers {
                group.addTask {
                    let names = workload.ownedStreams(of: writer).map(Workload.streamName)
                    let payload = BenchPayload(size: workload.eventSize, kind: workload.payload)
                    let quota = workload.quota(of: writer)
                    var random = SeededRandom(seed: UInt64(writer) &+ 1)
                    var written = 0
                    var appends = 0
                    while quota.map({ written < $0 }) ?? true {
                        if let deadline, clock.now >= deadline { break }
                        let count = quota.map { min(workload.batch, $0 - written) } ?? workload.batch
                        let stream = names[Int(random.next() % UInt64(names.count))]
                        // The same events as the peer's, made before the transaction as the peer's are (the writer
                        // connection is the bottleneck). Not `UUID()`: on Linux it reads /dev/urandom each time.
                        let events = (0..<count).map { i in
                            EventData(type: "Reading", data: payload.make(sequence: writer &* 100_000_000 &+ written &+ i))
                        }
                        try await pool.write { db in
                            let newest = try Int64.fetchOne(
                                db.cachedStatement(sql: "SELECT MAX(version) FROM events WHERE stream = ?"), arguments: [stream])
                            let insert = try db.cachedStatement(
                                sql: "INSERT INTO events (stream, version, id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)")
                            var version = newest.map { $0 + 1 } ?? 0
                            for event in events {
                                try insert.execute(arguments: [stream, version, event.id, event.type, Data(event.data), Data(event.metadata)])
                                version += 1
                            }
                        }
                        written += count
                        appends += 1
                    }
                    return (appends, written)
                }
            }
            var total = (appends: 0, events: 0)
            for try await counts in group {
                total.appends += counts.appends
                total.events += counts.events
            }
            return total
        }
        let seconds = started.duration(to: clock.now).seconds
        let storageAfter = ProcessMeter.storageWriteBytes
        let peakRSS = ProcessMeter.peakResidentBytes

        // Outside the measured loop: the table holds exactly what was appended, every stream gap-free from version 0.
        let (rows, gapFree) = try await pool.read { db in
            let rows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? -1
            let broken = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM (SELECT stream FROM events GROUP BY stream HAVING MAX(version) + 1 != COUNT(*) OR MIN(version) != 0)
                """) ?? -1
            return (rows, broken == 0)
        }
        guard rows == counts.events, gapFree else {
            throw BenchError("\(name): the table holds \(rows) events\(gapFree ? "" : " with gaps in some streams"), \(counts.events) were appended")
        }
        if let requested = workload.events, workload.duration == nil, counts.events != requested {
            throw BenchError("\(name): appended \(counts.events) events, \(requested) were asked for")
        }

        let payloadBytes = UInt64(counts.events) * UInt64(workload.eventSize)
        let storageWrites = storageBefore.flatMap { before in storageAfter.map { $0 >= before ? $0 - before : 0 } }
        return SystemResult(
            system: name, events: counts.events, appends: counts.appends, seconds: seconds,
            eventsPerSecond: Double(counts.events) / seconds,
            megabytesPerSecond: Double(payloadBytes) / 1_000_000 / seconds,
            latencyMs: nil, readerWaitMsP99: nil, readerProbes: nil, flushes: nil, flushesPerSecond: nil,
            payloadBytes: payloadBytes, bytesWritten: nil, bytesWrittenPerPayloadByte: nil,
            storageWriteBytes: storageWrites,
            storageWriteBytesPerPayloadByte: storageWrites.map { payloadBytes == 0 ? 0 : Double($0) / Double(payloadBytes) },
            peakRSSBytes: peakRSS, journalFullWaits: nil, read: nil, subscription: nil)
    }
}
