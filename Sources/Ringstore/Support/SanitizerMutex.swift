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
final class Mutex<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched between lock and unlock.
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ initialValue: consuming sending Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
        value = initialValue
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func withLock<Result: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value)
    }
}
#endif
