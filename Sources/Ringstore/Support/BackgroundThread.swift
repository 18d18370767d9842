import CRingstoreSupport
import Dispatch
import Glibc
import Synchronization
import SystemPackage

/// A dedicated OS thread. Used for loops that block in system calls
/// (`pwrite`, `fdatasync`) and must not tie up a Swift concurrency thread.
///
/// The thread is detached; its owner learns that it has ended through
/// ``exited()`` (or ``waitUntilExited()``), which return only once the body
/// has returned *and* released everything it captured. That is what lets a
/// store's close, or a failed open, release the journal's mapping and
/// descriptors before it returns: the loops capture the objects that own them.
final class BackgroundThread: Sendable {
    /// The thread's name (at most 15 bytes: it shows in `top -H`, `perf` and debuggers).
    let name: String
    /// What the thread works for (a journal's path): names it in errors, matches
    /// it in test faults, and groups it in ``running(ownedBy:)``.
    let owner: String

    private enum Phase { case notStarted, running, exited }
    private struct State: ~Copyable {
        var phase = Phase.notStarted
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())
    /// Signalled once when the thread has exited, for ``waitUntilExited()``.
    private let exitSignal = DispatchSemaphore(value: 0)

    /// Threads started and not yet exited, by owner (tests check that a failed
    /// open or a close leaves none behind).
    private static let live = Mutex<[String: Int]>([:])

    /// Whether the thread does background work (the split, checkpoints, the
    /// segment mover) that may give way to the journal's threads and the
    /// appending tasks whenever they wake up (see ``backgroundSliceNanoseconds``).
    let background: Bool

    init(name: String, owner: String, background: Bool = false) {
        self.name = name
        self.owner = owner
        self.background = background
    }

    /// The scheduler time slice of background threads: the longest the kernel
    /// takes (it clamps to 0.1-100 ms).
    ///
    /// Why: on two cores, a checkpoint keeps the splitter busy for tens of
    /// milliseconds; a flusher, acknowledger or concurrency-pool thread that
    /// woke up meanwhile on the splitter's processor waited behind it until the
    /// next scheduler tick (4 ms at 250 Hz), sometimes while the other processor
    /// was idle (`perf sched timehist`: 41 % of the time such a thread waited
    /// 1.5 ms or more, its processor ran the splitter). In the kernel's fair
    /// scheduler (EEVDF) a waking thread whose slice is shorter than the running
    /// one's and whose virtual deadline is earlier may preempt it at once. A
    /// thread that slept long enough does so with either slice (checked alone
    /// on one processor); the slice is for those that recently used more than
    /// their share, as the pool threads do. It does not change the thread's
    /// weight, so the split keeps its share of the processors under full load
    /// (raising its nice value did not: it cost throughput). Measured at half
    /// load: append p99 7.3 -> 5.6 ms (docs/ARCHITECTURE.md, "Sharing two
    /// processors with the appenders"). Kernels before 6.12 ignore it.
    static let backgroundSliceNanoseconds: UInt64 = 100_000_000

    /// The body and the handle, passed through `pthread_create`'s context pointer.
    private final class Body {
        let thread: BackgroundThread
        let run: @Sendable () -> Void
        init(_ thread: BackgroundThread, _ run: @escaping @Sendable () -> Void) {
            self.thread = thread
            self.run = run
        }
    }

    /// Starts `run` on the new thread. Call once.
    ///
    /// Throws ``RingstoreError/Code/ioError`` naming the thread if the system
    /// refuses one (`pthread_create` fails with `EAGAIN` under a thread or
    /// memory limit): the caller must then stop whatever it had started.
    func start(_ run: @escaping @Sendable () -> Void) throws {
        let started = state.withLock { s in
            guard case .notStarted = s.phase else { return false }
            s.phase = .running
            return true
        }
        precondition(started, "thread \(name) started twice")
        Self.live.withLock { $0[owner, default: 0] += 1 }
        let context = Unmanaged.passRetained(Body(self, run)).toOpaque()
        var thread = pthread_t()
        var result: Int32
        do {
            try FaultInjection.check(.startThread, "\(owner)/\(name)")
            result = pthread_create(&thread, nil, { context in
                BackgroundThread.main(context!).markExited()
                return nil
            }, context)
        } catch {
            result = error.rawValue
        }
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            state.withLock { $0.phase = .notStarted }
            Self.live.withLock { live in
                live[owner, default: 1] -= 1
                if live[owner] == 0 { live[owner] = nil }
            }
            let code = Errno(rawValue: result)
            throw RingstoreError(.ioError, "cannot start thread \(name) for \(owner): \(code)", path: owner, cause: code)
        }
        pthread_detach(thread)
    }

    /// Runs the body and releases it (and so everything its closure captured)
    /// before returning the handle to mark exited.
    private static func main(_ context: UnsafeMutableRawPointer) -> BackgroundThread {
        let body = Unmanaged<Body>.fromOpaque(context).takeRetainedValue()
        rs_set_thread_name(body.thread.name)
        // Best effort: a thread left with the usual slice only waits for the tick to give way.
        if body.thread.background { _ = rs_set_thread_slice(backgroundSliceNanoseconds) }
        body.run()
        return body.thread
    }

    private func markExited() {
        Self.live.withLock { live in
            live[owner, default: 1] -= 1
            if live[owner] == 0 { live[owner] = nil }
        }
        let waiters = state.withLock { s in
            s.phase = .exited
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        exitSignal.signal()
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the thread has exited (at once if it never started).
    func exited() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if case .running = s.phase {
                    s.waiters.append(continuation)
                    return false
                }
                return true
            }
            if done { continuation.resume() }
        }
    }

    /// Blocks until the thread has exited (at once if it never started). Only for
    /// synchronous failure paths, where the body has been told to stop and ends promptly.
    func waitUntilExited() {
        let running = state.withLock { s in
            if case .running = s.phase { return true }
            return false
        }
        guard running else { return }
        exitSignal.wait()
        exitSignal.signal()  // for any later caller
    }

    /// Threads started for owners containing `fragment` that have not exited yet.
    static func running(ownedBy fragment: String) -> Int {
        live.withLock { live in live.filter { $0.key.contains(fragment) }.values.reduce(0, +) }
    }
}

/// Nanoseconds on the monotonic clock: one `clock_gettime`, no 128-bit
/// `Duration` arithmetic (the bench's writers time every append with it too).
@inline(__always)
package func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Nanoseconds since 1970-01-01 UTC.
@inline(__always)
func wallClockNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
