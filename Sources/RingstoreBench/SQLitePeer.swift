import Foundation
import GRDB
import GRDBSQLite
import Ringstore
import Synchronization

/// SQLite through GRDB, as the peer ``BenchSystem`` that `ringstore bench --compare sqlite` runs.
///
/// One table, `events(position INTEGER PRIMARY KEY, stream, version, id, type,
/// data, metadata, UNIQUE(stream, version))`, in WAL mode with
/// `synchronous=FULL` (durable) or `NORMAL` (relaxed). One transaction per
/// append: read the stream's newest version through the unique index, compare
/// it with the expected version, insert the events with a cached statement. A
/// `DatabasePool` has one writer connection, so appends serialize, which is
/// exactly what is being compared; reads go through its reader connections.
public final class SQLitePeer: BenchSystem {
    /// The event table both SQLite programs use (the peer and `sqlite-minimal`).
    static let createEventsTable = """
        CREATE TABLE events (
            position INTEGER PRIMARY KEY,
            stream TEXT NOT NULL,
            version INTEGER NOT NULL,
            id BLOB NOT NULL,
            type TEXT NOT NULL,
            data BLOB NOT NULL,
            metadata BLOB NOT NULL,
            UNIQUE (stream, version))
        """

    public let name = "sqlite"
    public let path: String
    private let pool: DatabasePool
    private let walCounter: WALCounter
    private let pageSize: UInt64
    private let durability: Workload.Durability

    private init(path: String, pool: DatabasePool, walCounter: WALCounter, pageSize: UInt64, durability: Workload.Durability) {
        self.path = path
        self.pool = pool
        self.walCounter = walCounter
        self.pageSize = pageSize
        self.durability = durability
    }

    /// Creates the database file at `path` (which must not exist yet).
    public static func create(at path: String, durability: Workload.Durability) throws -> SQLitePeer {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw BenchError("sqlite: \(path) already exists; give a new path")
        }
        var configuration = GRDB.Configuration()
        // A reader connection rebuilding the WAL index (after a WAL restart) holds
        // a lock for a moment; without a busy timeout the writer's BEGIN IMMEDIATE
        // then failed with "database is locked" instead of waiting.
        configuration.busyMode = .timeout(10)
        let pool = try DatabasePool(path: path, configuration: configuration)
        let synchronous = durability == .durable ? "FULL" : "NORMAL"
        let counter = WALCounter()
        let pageSize: Int = try pool.writeWithoutTransaction { db in
            try db.execute(sql: Self.createEventsTable)
            // The pool sets synchronous=NORMAL on its writer when it enables WAL;
            // the writer connection is the only one that commits, so set it there.
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode")
            let level = try Int.fetchOne(db, sql: "PRAGMA synchronous")
            guard mode == "wal", level == (durability == .durable ? 2 : 1) else {
                throw BenchError("sqlite: could not set journal_mode=WAL and synchronous=\(synchronous) (got \(mode ?? "?"), \(level ?? -1))")
            }
            counter.install(on: db.sqliteConnection)
            return try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        }
        return SQLitePeer(path: path, pool: pool, walCounter: counter, pageSize: UInt64(pageSize), durability: durability)
    }

    public func append(stream: String, expectedVersion: UInt64?, events: [EventData]) async throws {
        try await pool.write { db in
            let current = try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT version FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1"),
                arguments: [stream])
            guard current.map(UInt64.init) == expectedVersion else {
                throw BenchError("sqlite: \(stream) is at version \(current.map(String.init) ?? "none"), expected \(expectedVersion.map(String.init) ?? "none")")
            }
            let insert = try db.cachedStatement(
                sql: "INSERT INTO events (stream, version, id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)")
            var version = current.map { $0 + 1 } ?? 0
            for event in events {
                try insert.execute(arguments: [stream, version, event.id, event.type, Data(event.data), Data(event.metadata)])
                version += 1
            }
        }
    }

    public func latestVersion(of stream: String) async throws -> UInt64? {
        try await pool.read { db in
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT version FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1"),
                arguments: [stream]).map(UInt64.init)
        }
    }

    /// Bytes written: WAL frames appended (page + 24-byte frame header each)
    /// plus pages copied into the database file by checkpoints. Flushes follow
    /// SQLite's sync rules in WAL mode: one WAL sync per commit at
    /// `synchronous=FULL` (none at `NORMAL`), and two (WAL, then database) per
    /// checkpoint that copied pages.
    public func counters() async throws -> SystemCounters {
        let (commits, frames, checkpoints, pagesCheckpointed) = walCounter.snapshot()
        let flushes = (durability == .durable ? commits : 0) + 2 * checkpoints
        return SystemCounters(flushes: flushes, bytesWritten: frames * (pageSize + 24) + pagesCheckpointed * pageSize)
    }

    public func progressDetail() -> String {
        let (_, _, checkpoints, _) = walCounter.snapshot()
        return "\(checkpoints) checkpoints"
    }

    /// Nothing runs in the background: the automatic checkpoints run inside commits.
    public func settle() async throws {}

    /// Syncs the file system of the database's folder.
    public func startMeasuring() throws {
        try FileSystemSync.sync((path as NSString).deletingLastPathComponent)
    }

    public func readStream(_ stream: String) async throws -> Int {
        try await pool.read { db in
            let rows = try Row.fetchCursor(
                db.cachedStatement(sql: "SELECT position, version, id, type, data, metadata FROM events WHERE stream = ? ORDER BY version"),
                arguments: [stream])
            var count = 0
            while let row = try rows.next() {
                let event = SQLiteEvent(row: row)
                guard event.version == count else {
                    throw BenchError("sqlite: \(stream) returned version \(event.version) where \(count) was expected")
                }
                count += 1
            }
            return count
        }
    }

    public func readAll() async throws -> Int {
        try await pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT position, version, id, type, data, metadata FROM events ORDER BY position")
            var count = 0
            while let row = try rows.next() {
                _ = SQLiteEvent(row: row)
                count += 1
            }
            return count
        }
    }

    public func close() async throws {
        try pool.close()
    }
}

/// One row decoded into values, as a reader of the table would.
private struct SQLiteEvent {
    var position: Int64
    var version: Int64
    var id: UUID
    var type: String
    var data: Data
    var metadata: Data

    init(row: Row) {
        position = row[0]
        version = row[1]
        id = row[2]
        type = row[3]
        data = row[4]
        metadata = row[5]
    }
}

/// Counts commits, WAL frames and checkpoints through SQLite's WAL hook, and runs
/// the automatic checkpoints itself.
///
/// Installing a WAL hook replaces SQLite's own auto-checkpoint hook, so this one
/// does what that does (a passive checkpoint once the WAL holds 1,000 pages) and
/// counts what it did. SQLite calls the hook on the writer connection after each
/// commit; the counters are atomics so the progress display may read them.
final class WALCounter: Sendable {
    static let autocheckpointPages: Int32 = 1_000

    private let commits = Atomic<UInt64>(0)
    private let frames = Atomic<UInt64>(0)
    private let checkpoints = Atomic<UInt64>(0)
    private let pagesCheckpointed = Atomic<UInt64>(0)
    /// Frames in the WAL after the previous commit; fewer now means the WAL restarted from its beginning.
    private let framesInWAL = Atomic<Int32>(0)

    func install(on connection: OpaquePointer?) {
        // The database keeps `self` alive for as long as the hook is installed (the peer owns both).
        sqlite3_wal_hook(connection, { context, connection, database, framesInWAL in
            guard let context else { return SQLITE_OK }
            let counter = Unmanaged<WALCounter>.fromOpaque(context).takeUnretainedValue()
            counter.committed(framesInWAL: framesInWAL)
            if framesInWAL >= WALCounter.autocheckpointPages {
                var logFrames: Int32 = 0
                var copied: Int32 = 0
                if sqlite3_wal_checkpoint_v2(connection, database, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &copied) == SQLITE_OK, copied > 0 {
                    counter.checkpoints.add(1, ordering: .relaxed)
                    counter.pagesCheckpointed.add(UInt64(copied), ordering: .relaxed)
                }
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func committed(framesInWAL now: Int32) {
        let before = framesInWAL.exchange(now, ordering: .relaxed)
        let added = now >= before ? now - before : now
        commits.add(1, ordering: .relaxed)
        frames.add(UInt64(added), ordering: .relaxed)
    }

    func snapshot() -> (commits: UInt64, frames: UInt64, checkpoints: UInt64, pagesCheckpointed: UInt64) {
        (commits.load(ordering: .relaxed), frames.load(ordering: .relaxed),
         checkpoints.load(ordering: .relaxed), pagesCheckpointed.load(ordering: .relaxed))
    }
}
