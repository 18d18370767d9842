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
    /// has shortened the journal-full wait to `wait`, or nil if it was cancelled
    /// before any failure was reported. It has no deadline of its own: a loaded
    /// machine's splitter may take minutes to fill the disk, and a watch that gave
    /// up first would leave the test's appends waiting out the long wait and
    /// failing without naming the disk.
    public static func start(_ store: EventStore, thenWait wait: Duration) -> Task<RingstoreError?, Never> {
        Task {
            while true {
                if let failure = store.splitterFailure {
                    store.setJournalFullWait(wait)
                    return failure
                }
                if Task.isCancelled { return nil }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }
}
