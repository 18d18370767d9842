import CRingstoreSupport
import Glibc
import Synchronization

/// Fixes glibc's threshold for serving allocations with their own mapping, once
/// per process, when the first store opens.
///
/// Why: by default glibc raises that threshold each time a mapped allocation is
/// freed (up to 32 MiB), and its heap-trimming threshold with it. The store
/// allocates and frees buffers of about 1 MiB all the time (ring scans, segment
/// read-ahead for `$all`, decompressed blocks); after the first is freed, later
/// ones come from the heaps of the threads that happen to run, and the memory
/// they free is kept there between long-lived small allocations instead of
/// being returned. Measured with 100,000 streams (`ringstore bench --streams
/// 100000 --events 500000 --read`): peak RSS 133-151 MiB with the default,
/// 121-123 MiB with the threshold fixed (any fixed value turns the adjustment
/// off). Just above 1 MiB keeps those buffers in the heap, where freed space is
/// reused, without a `mmap`/`munmap` and page faults for each. A process that
/// sets `MALLOC_MMAP_THRESHOLD_` itself keeps its own choice.
enum MallocTuning {
    static let mmapThreshold: Int32 = (1 << 20) + (64 << 10)
    private static let applied = Atomic<Bool>(false)

    static func applyOnce() {
        guard !applied.exchange(true, ordering: .relaxed) else { return }
        guard getenv("MALLOC_MMAP_THRESHOLD_") == nil else { return }
        _ = rs_fix_mmap_threshold(mmapThreshold)
    }
}
