import Synchronization
import SystemPackage

/// A `syncfs` of a compaction's new files on a thread of its own, started
/// once the streams are rewritten, while the compaction writes the global
/// index: the commit's own `syncfs` then finds little left to write.
///
/// Why: the new files' writeback (block allocation for every new file, then
/// the device's writes) took 1-1.5 s after the global index's rewrite, with
/// one processor idle; the rewrite of the global index took about as long
/// with the other idle. Only an early start: the commit still syncs the file
/// system itself before its switch (`MaintenanceSession.compact`).
///
/// A failure of the early sync fails the compaction (``finish()``): the kernel
/// may have marked the pages it could not write clean, and a later `syncfs`
/// through another descriptor would not report it.
final class WritebackAhead: Sendable {
    private let thread: BackgroundThread
    private let failure = Mutex<RingstoreError?>(nil)

    private init(thread: BackgroundThread) {
        self.thread = thread
    }

    /// Starts syncing the file system holding `folder`; nil if the system
    /// refused a thread (the commit's sync then does all the work, as it would).
    static func start(syncing folder: FilePath, owner: String) -> WritebackAhead? {
        let ahead = WritebackAhead(thread: BackgroundThread(name: "rs-writeback", owner: owner))
        do {
            try ahead.thread.start { [ahead] in
                do {
                    try StorageDirectory.syncFileSystem(containing: folder)
                } catch {
                    ahead.failure.withLock { $0 = error as? RingstoreError ?? RingstoreError(.ioError, "syncfs for \(folder) failed: \(error)", path: folder.string) }
                }
            }
        } catch {
            return nil
        }
        return ahead
    }

    /// Waits for the sync to end (also when the compaction gives up).
    func wait() {
        thread.waitUntilExited()
    }

    /// Waits for the sync to end and throws its failure, if any.
    func finish() throws {
        wait()
        if let failure = failure.withLock({ $0 }) { throw failure }
    }
}
