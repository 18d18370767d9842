import CRingstoreSupport
import Synchronization

/// Gives the free memory that glibc's heaps keep back to the system once the
/// process's anonymous resident memory has grown by ``growthBeforeTrim`` since
/// the last trim (or since its lowest point after it). Every open store's
/// splitter asks (``trimIfGrown(now:)``); the answer is looked up at most once
/// per ``checkInterval`` in the whole process. The splitter, not the store's
/// once-a-second metrics task: a trim can take milliseconds, which a thread of
/// the store's own can spend but one of the two threads of the concurrency
/// pool on a small box should not.
///
/// Why: glibc gives memory back on `free` only from the top of a heap; free
/// chunks between live ones stay resident until `malloc_trim`. The store's
/// threads and its readers' tasks allocate and free buffers of up to 1 MiB
/// (passes over the ring, decoded blocks, chain listings) in several
/// per-thread heaps, and those heaps kept about 25 MiB free at the peak of a
/// 100,000-stream ingest followed by a `$all` read. Trimming brought that
/// run's peak from 136-142 MiB to 120-123 (docs/PERFORMANCE.md, "Free heap
/// memory given back").
///
/// Why only after growth: `malloc_trim` holds each heap's lock while it hands
/// pages back, and an allocation in that heap waits meanwhile: 0.2-3 ms a call
/// in the bench's stores, 3-9 ms in the demo's heap of about 100 MiB over
/// 100,000 streams. A store whose
/// memory is steady never pays that; a peak is growth, so the free memory
/// below it is given back within about ``checkInterval`` of it.
enum HeapTrim {
    /// How often the process's anonymous resident memory is looked at.
    static let checkInterval: Int64 = 1_000_000_000
    /// How far that memory grows before a trim.
    static let growthBeforeTrim = 4 << 20

    /// When growth crosses ``HeapTrim/growthBeforeTrim``, measured from the
    /// memory after the last trim, or from the lowest seen since.
    struct Growth: Sendable {
        private(set) var baseline: Int?

        /// Whether `resident` bytes call for a trim; lowers the baseline when memory fell.
        mutating func calls(forTrimAt resident: Int) -> Bool {
            guard let baseline else {
                self.baseline = resident
                return false
            }
            if resident < baseline { self.baseline = resident }
            return resident - baseline >= HeapTrim.growthBeforeTrim
        }

        /// Measures growth from `resident`, the memory right after a trim.
        mutating func trimmed(leaving resident: Int) { baseline = resident }
    }

    private static let nextCheck = Atomic<Int64>(0)
    private static let growth = Mutex(Growth())
    /// Trims done in this process (tests).
    static let trims = Atomic<Int>(0)

    /// Trims if memory grew enough since the last trim and ``checkInterval``
    /// has passed since the last look; at most one caller in the process
    /// looks at a time, and the others return at once.
    static func trimIfGrown(now: Int64 = monotonicNanoseconds()) {
        let due = nextCheck.load(ordering: .relaxed)
        guard now >= due,
              nextCheck.compareExchange(expected: due, desired: now + checkInterval, ordering: .relaxed).exchanged
        else { return }
        let resident = Int(rs_anonymous_resident_bytes())
        guard resident >= 0, growth.withLock({ $0.calls(forTrimAt: resident) }) else { return }
        trimNow()
    }

    /// Gives every heap's free pages back now.
    static func trimNow() {
        _ = rs_trim_heap()
        trims.add(1, ordering: .relaxed)
        let resident = Int(rs_anonymous_resident_bytes())
        if resident >= 0 { growth.withLock { $0.trimmed(leaving: resident) } }
    }
}
