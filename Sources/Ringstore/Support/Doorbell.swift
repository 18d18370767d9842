import Dispatch
import Synchronization

/// Wakes a sleeping background thread; ringing costs no system call unless
/// the thread is actually asleep.
final class Doorbell: Sendable {
    private let sleeping = Atomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    func ring() {
        if sleeping.exchange(false, ordering: .acquiringAndReleasing) { semaphore.signal() }
    }

    /// Sleeps until rung or until `timeoutNanoseconds` pass. `stillIdle` is
    /// checked after announcing the sleep, so a ring between the caller's last
    /// look and the sleep is never lost.
    func wait(timeoutNanoseconds: Int64, stillIdle: () -> Bool) {
        sleeping.store(true, ordering: .sequentiallyConsistent)
        guard stillIdle() else {
            if !sleeping.exchange(false, ordering: .acquiringAndReleasing) { semaphore.wait() }  // consume the ring's signal
            return
        }
        if semaphore.wait(timeout: .now() + .nanoseconds(Int(timeoutNanoseconds))) == .timedOut {
            if !sleeping.exchange(false, ordering: .acquiringAndReleasing) { semaphore.wait() }
        }
    }
}
