import Synchronization

/// A named point in the engine where a test can run code on the thread that
/// reaches it: typically to block that thread until the test has made
/// something else happen (a checkpoint, an append), so that a race can be
/// reproduced deterministically instead of by sleeping and hoping.
///
/// Internal on purpose: only tests (through `@testable import`) can install an
/// action. With none installed, reaching the point costs one relaxed atomic
/// load, like ``FaultInjection``.
final class TestHook: Sendable {
    private let installed = Atomic<Bool>(false)
    private let action = Mutex<(@Sendable () -> Void)?>(nil)

    init() {}

    /// Runs the installed action, if any, on the calling thread.
    @inline(__always)
    func reached() {
        guard _slowPath(installed.load(ordering: .relaxed)) else { return }
        slowReached()
    }

    @inline(never)
    private func slowReached() {
        // Called outside the lock: the action may block for as long as the test likes.
        if let action = action.withLock({ $0 }) { action() }
    }

    /// Installs `body` to run each time the point is reached (replacing any other).
    func install(_ body: @escaping @Sendable () -> Void) {
        action.withLock { $0 = body }
        installed.store(true, ordering: .releasing)
    }

    /// Removes the action.
    func remove() {
        installed.store(false, ordering: .releasing)
        action.withLock { $0 = nil }
    }
}
