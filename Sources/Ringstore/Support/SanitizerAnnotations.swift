#if RINGSTORE_TSAN
import CRingstoreSupport
#endif

/// What ThreadSanitizer builds (`-Xswiftc -DRINGSTORE_TSAN`, see the README's
/// "Hardening" section) need told; in normal builds these run their body and
/// nothing else.
enum SanitizerAnnotations {
    /// Runs `body`, a continuation's resumption, without ThreadSanitizer
    /// recording the values it writes into the resumed task.
    ///
    /// Why: resuming a continuation with a value stores that value into the
    /// waiting task's frame and then tells ThreadSanitizer it "happens before"
    /// the task runs again, which the task acknowledges when it is next
    /// scheduled. But when the resumption comes before the task has reached
    /// its `await` (the append was staged, flushed and acknowledged by other
    /// threads while the appending thread was preempted), the Swift runtime
    /// (as of 6.3) lets the task carry straight on without that
    /// acknowledgement, so ThreadSanitizer reports the task's next use of its
    /// own frame as a race with the resuming thread. A standalone program that
    /// resumes `UnsafeContinuation`s from a `pthread` shows the same report;
    /// the runtime's ordering makes it harmless.
    @inline(__always)
    static func resumingTask<Result>(_ body: () throws -> Result) rethrows -> Result {
        #if RINGSTORE_TSAN
        AnnotateIgnoreWritesBegin(#fileID, #line)
        defer { AnnotateIgnoreWritesEnd(#fileID, #line) }
        #endif
        return try body()
    }
}
