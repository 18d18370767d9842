#if RINGSTORE_TSAN
import Glibc

/// Replaces `Synchronization.Mutex` inside this module in ThreadSanitizer builds
/// (`-Xswiftc -DRINGSTORE_TSAN`, see the README's "Hardening" section).
///
/// On Linux, `Synchronization.Mutex` locks with futex system calls that
/// ThreadSanitizer cannot see, so every access under it is reported as a race
/// (a three-line program that only appends to an array under a `Mutex` from
/// four threads is enough). This stand-in with the same shape uses a
/// `pthread_mutex_t`, which ThreadSanitizer intercepts, so that what it reports
/// is real. Never compiled into normal builds.
///
/// The value lives in a cell of its own rather than in a stored property: a
/// stored property of a zero-sized type (`Mutex(())`, a lock guarding no data)
/// sits at the object's end, which in a 24-byte object is the next heap
/// block's first word, so ThreadSanitizer's tracking of Swift's exclusive
/// accesses reported two different locks' sections as racing on it.
final class Mutex<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched between lock and unlock.
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    init(_ initialValue: consuming sending Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    func withLock<Result: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }
}
#endif
