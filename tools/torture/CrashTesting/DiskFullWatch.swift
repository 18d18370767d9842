@_spi(FaultTesting) import Ringstore

/// Makes a disk-full test's verdict independent of the machine's speed.
///
/// The test fills the disk with a long `journalFullWait`, so no append fails
/// just because a busy machine's splitter lags (that journal-full error would
/// rightly name no cause). This watch waits until the splitter reports a
/// failure, then shortens the wait: from then on the ring, stuck behind the
/// full disk, fails appends quickly, and their errors must name the full disk.
public enum DiskFullWatch {
    /// Starts watching `store`; the task returns the splitter's failure once it
    /// has shortened the journal-full wait to `wait`, or nil if `timeout` passed
    /// (or the task was cancelled) before any failure was reported.
    public static func start(_ store: EventStore, thenWait wait: Duration,
                             timeout: Duration = .seconds(120)) -> Task<RingstoreError?, Never> {
        Task {
            let deadline = ContinuousClock.now + timeout
            while true {
                if let failure = store.splitterFailure {
                    store.setJournalFullWait(wait)
                    return failure
                }
                if Task.isCancelled || ContinuousClock.now >= deadline { return nil }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }
}
