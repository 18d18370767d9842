import Glibc

/// The library's lock: inside this module `Mutex` is this type, not the
/// Synchronization module's, which it shadows. Same shape: `withLock`.
///
/// Why not `Synchronization.Mutex`: on Linux it is a priority-inheritance
/// futex (`FUTEX_LOCK_PI`). Unlocking one that has waiters hands it, in the
/// kernel, to the first waiter, and until that thread gets a processor the
/// lock is held by no one running: every other thread that wants it waits too.
/// On two processors kept busy by the split's threads and the appends, such a
/// new owner often waited milliseconds to run, and every append queued behind
/// the writer's lock meanwhile (at half load, relaxed mode, append p99 from
/// the due time was 11.7-12.7 ms with it, 5.4-5.9 ms with this lock, together
/// with shorter lock sections at checkpoints; docs/ARCHITECTURE.md, "The lock
/// every append takes"). glibc's ordinary mutex only
/// wakes a waiter when it is unlocked, and a thread that is running takes the
/// released lock at once. Priority inheritance buys nothing here: every
/// thread of the store runs at the same (non-real-time) priority.
///
/// ThreadSanitizer sees `pthread_mutex_t` (it cannot see futex calls), so
/// sanitizer builds need no other lock.
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

    /// `spinning`: a thread that finds the lock held spins briefly (glibc's
    /// adaptive mutex, about a hundred tries) before it sleeps in the kernel.
    /// For a lock whose sections last about a microsecond and which many
    /// threads take all the time (the journal writer's: every append, and the
    /// flusher once a pass): sleeping and being woken costs a `futex` call on
    /// each side and a context switch, tens of microseconds on a virtual
    /// machine, where the holder would have let go within one. Measured in
    /// docs/ARCHITECTURE.md, "Spinning before sleeping on the writer's lock".
    init(_ initialValue: consuming sending Value, spinning: Bool = false) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        if spinning {
            var attributes = pthread_mutexattr_t()
            pthread_mutexattr_init(&attributes)
            pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
            pthread_mutex_init(lock, &attributes)
            pthread_mutexattr_destroy(&attributes)
        } else {
            pthread_mutex_init(lock, nil)
        }
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    @inline(__always)
    func withLock<Result: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }
}
