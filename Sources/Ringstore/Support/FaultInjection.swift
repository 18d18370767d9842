import Glibc
import Synchronization
import SystemPackage

/// Test-only faults in the engine's file I/O: ``StorageFile`` and
/// ``StorageDirectory`` consult it before every open, write, flush and rename,
/// and ``BackgroundThread`` before it starts a thread.
///
/// Internal on purpose: only tests (through `@testable import`) can install
/// rules, so a user cannot switch it on by accident. With no rules installed it
/// costs one relaxed atomic load per call.
///
/// Rules are matched by a substring of the file's path, so that tests running
/// in parallel, each in its own temporary directory, do not disturb each other.
enum FaultInjection {
    /// The file operations a rule can target.
    enum Operation: Sendable, Hashable, CustomStringConvertible {
        case open, write, flush, rename
        /// Starting a thread; the path is the thread's owner and name (`<journal path>/rs-flusher`).
        case startThread

        var description: String {
            switch self {
            case .open: "open"
            case .write: "write"
            case .flush: "flush"
            case .rename: "rename"
            case .startThread: "start thread"
            }
        }
    }

    /// What to do to the matching calls.
    enum Effect: Sendable {
        /// Fail the call with this error (`EIO`, `ENOSPC`, …) without performing it.
        case fail(Errno)
        /// Perform the call after sleeping this long (a stalling SD card).
        case delay(Duration)
    }

    /// One rule: `effect` applies to `operation` on paths containing `pathContains`,
    /// for the next `count` matching calls (nil: until removed).
    struct Rule: Sendable {
        var operation: Operation
        var pathContains: String
        var effect: Effect
        var count: Int?
    }

    /// A handle to remove an installed rule.
    struct Token: Sendable, Hashable { fileprivate let id: Int }

    private struct Rules: ~Copyable {
        var active: [(id: Int, rule: Rule, hits: Int)] = []
        var nextID = 0
    }

    private static let anyInstalled = Atomic<Bool>(false)
    private static let rules = Mutex(Rules())

    /// Installs `rule` and returns a token to remove it with.
    @discardableResult
    static func install(_ rule: Rule) -> Token {
        rules.withLock { r in
            r.nextID += 1
            r.active.append((r.nextID, rule, 0))
            anyInstalled.store(true, ordering: .releasing)
            return Token(id: r.nextID)
        }
    }

    /// Removes a rule (a rule with a count also removes itself once used up).
    static func remove(_ token: Token) {
        rules.withLock { r in
            r.active.removeAll { $0.id == token.id }
            if r.active.isEmpty { anyInstalled.store(false, ordering: .releasing) }
        }
    }

    /// How many calls the rule has affected so far (0 once it is removed).
    static func hits(_ token: Token) -> Int {
        rules.withLock { r in r.active.first { $0.id == token.id }?.hits ?? 0 }
    }

    /// Applies the matching rules to one call: sleeps for a delay, throws for a failure.
    @inline(__always)
    static func check(_ operation: Operation, _ path: FilePath) throws(Errno) {
        guard _slowPath(anyInstalled.load(ordering: .relaxed)) else { return }
        try slowCheck(operation, path.string)
    }

    @inline(__always)
    static func check(_ operation: Operation, _ path: String) throws(Errno) {
        guard _slowPath(anyInstalled.load(ordering: .relaxed)) else { return }
        try slowCheck(operation, path)
    }

    @inline(never)
    private static func slowCheck(_ operation: Operation, _ path: String) throws(Errno) {
        let effects: [Effect] = rules.withLock { r in
            var effects: [Effect] = []
            for i in r.active.indices where r.active[i].rule.operation == operation && path.contains(r.active[i].rule.pathContains) {
                r.active[i].hits += 1
                if let count = r.active[i].rule.count { r.active[i].rule.count = count - 1 }
                effects.append(r.active[i].rule.effect)
            }
            r.active.removeAll { $0.rule.count.map { $0 <= 0 } ?? false }
            if r.active.isEmpty { anyInstalled.store(false, ordering: .releasing) }
            return effects
        }
        for effect in effects {
            switch effect {
            case .delay(let duration):
                let (seconds, attoseconds) = duration.components
                var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
                var remaining = timespec()
                while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
            case .fail(let code):
                throw code
            }
        }
    }
}
