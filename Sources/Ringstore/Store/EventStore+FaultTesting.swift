import Synchronization

/// Hooks for the disk-full and crash tests, which run in processes of their
/// own and so cannot use `@testable import`: reached through
/// `@_spi(FaultTesting) import Ringstore`. Not part of the supported API.
extension EventStore {
    /// Why the checkpoint cannot move, if the splitter or the checkpointer is
    /// failing (for example: the disk is full); nil while all is well.
    @_spi(FaultTesting) public var splitterFailure: RingstoreError? { splitter.failure }

    /// Changes how long appends wait for ring space (``Configuration/journalFullWait``)
    /// from now on, appends already waiting included.
    ///
    /// Why: a test of a full disk must fill the ring with a long wait, or a
    /// splitter that is merely slow on a loaded machine fails appends with a
    /// journal-full error that rightly names no cause; once the splitter reports
    /// the full disk, a short wait makes the appends fail quickly, naming it.
    @_spi(FaultTesting) public func setJournalFullWait(_ wait: Duration) {
        journal.writer.journalFullWaitNanoseconds.store(wait.nanoseconds, ordering: .relaxed)
    }
}
