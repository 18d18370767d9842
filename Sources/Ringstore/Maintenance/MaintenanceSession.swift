import Logging
import SystemPackage

/// The offline tool's hold on a closed store: the store's lock, taken for the
/// whole session, and an interrupted compaction finished or undone first.
///
/// Everything the tool does goes through here (``verify(progress:)``,
/// ``compact(options:progress:)``, ``inspect()``), so it never works on a store
/// another process has open, and no other process can open it meanwhile.
package final class MaintenanceSession: Sendable {
    package let directory: String
    let path: FilePath
    let lock: StoreLock
    let configuration: Configuration
    /// What opening found of an earlier compaction.
    package let pendingCompaction: String?

    /// Takes the lock of the store in `directory`.
    ///
    /// - Throws: `.storeNotFound` when the folder is missing or holds no store
    ///   (no `journal.ring`; nothing is created in it), `.storeLocked` naming the
    ///   holder's pid when the store is open.
    package init(directory: String, configuration: Configuration = Configuration()) throws {
        let path = FilePath(directory)
        guard StorageDirectory.exists(path) else {
            throw RingstoreError(.storeNotFound, "no such folder: \(directory)", path: directory)
        }
        guard StorageDirectory.isDirectory(path) else {
            throw RingstoreError(.storeNotFound, "\(directory) is not a folder", path: directory)
        }
        guard StorageDirectory.exists(path.appending(JournalVerifier.fileName)) else {
            throw RingstoreError(.storeNotFound, "\(directory) is not a Ringstore store (it has no \(JournalVerifier.fileName))", path: directory)
        }
        self.directory = directory
        self.path = path
        self.configuration = configuration
        lock = try StoreLock(directory: path)
        do {
            switch try CompactionSwitch.finishIfPending(in: path) {
            case .nothing: pendingCompaction = nil
            case .rolledBack: pendingCompaction = "an interrupted compaction was rolled back (the store is as before it)"
            case .completed: pendingCompaction = "an interrupted compaction was completed (the store is as after it)"
            case .cleanedUp: pendingCompaction = "an interrupted compaction's removal of the old files was finished (the store is as after it)"
            }
        } catch {
            lock.release()
            throw error
        }
    }

    /// Releases the lock (also done when the session is released).
    package func close() { lock.release() }

    /// Checks every file of the store (read-only).
    package func verify(progress: @escaping (Int, Int) -> Void = { _, _ in }) -> VerifyReport {
        StoreVerifier(directory: path, progress: progress).verify()
    }

    /// Opens the store as the engine does (recovery included), keeping this session's lock.
    /// An interrupted compaction was settled when the session began, under the same lock,
    /// so the open leaves `compact.new/` alone (a compaction's verification may have
    /// written its temporary files there already). `prepared`: the split segments'
    /// heads as a walk under this lock found them (the open then does not walk them).
    func openStore(prepared: SplitSegments.Prepared? = nil) async throws -> EventStore {
        // A switch left part-way by an earlier compaction of this session is still finished
        // first, as any open finishes it (only `compact.new/` alone is left to the caller).
        if StorageDirectory.exists(path.appending(CompactionSwitch.marker)) || StorageDirectory.exists(path.appending(CompactionSwitch.oldFolder)) {
            _ = try CompactionSwitch.finishIfPending(in: path)
        }
        var logger = Logger(label: "ringstore-admin")
        logger.logLevel = .warning
        return try await EventStore.open(at: directory, configuration: configuration, logger: logger, heldLock: lock,
                                         compactionSettled: true, preparedSegments: prepared)
    }
}
