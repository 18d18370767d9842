#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The monotonic clock in nanoseconds, read with one `clock_gettime`.
///
/// The writers time every append, and the bench runs in the process it
/// measures: `ContinuousClock` instants and the `Duration` between them are
/// 128-bit attosecond counts, and turning one into nanoseconds (a 128-bit
/// division) cost about 200 instructions per append, besides the clock read.
/// Both systems' writers use it alike.
enum MonotonicNanoseconds {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
