// How late writers that keep a fixed schedule wake up, without Ringstore: the
// floor under `ringstore bench --rate`'s latency counted from the due time.
//
//   swiftc -O Benchmarks/wake-lateness.swift -o wake-lateness
//   ./wake-lateness [sleep|zero|pacer] [BUSY_THREADS=0] [WRITERS=64] [RATE=75000] [SECONDS=8]
//
// WRITERS tasks each keep their share of RATE appends per second and do nothing
// else; each records how long after its due time it woke. `sleep` waits with
// `Task.sleep(until:)` as the bench does (no tolerance: `dispatch_after`, whose
// leeway is a tenth of the wait and at least 1 ms); `zero` passes
// `tolerance: .zero`; `pacer` lets one thread of its own `clock_nanosleep` to
// the earliest due time and resume that writer's continuation. BUSY_THREADS
// threads each spin 60 % of a processor beside them, standing in for a store's
// threads. It prints the lateness's p50, p99, p99.9 and longest.
import Foundation

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "sleep"
let busy = arguments.count > 2 ? Int(arguments[2])! : 0
let writers = arguments.count > 3 ? Int(arguments[3])! : 64
let rate = arguments.count > 4 ? Double(arguments[4])! : 75_000
let seconds = arguments.count > 5 ? Double(arguments[5])! : 8
guard ["sleep", "zero", "pacer"].contains(mode) else { fatalError("mode: sleep, zero or pacer") }
let interval = UInt64(1e9 * Double(writers) / rate)

@Sendable func now() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

for _ in 0..<busy {
    Thread.detachNewThread {
        while true {
            let start = now()
            while now() - start < 600_000 {}
            usleep(400)
        }
    }
}

/// One thread that wakes each waiting writer at its due time.
final class Pacer: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: [(due: UInt64, writer: CheckedContinuation<Void, Never>)] = []
    private let added = DispatchSemaphore(value: 0)

    func wait(until due: UInt64) async {
        await withCheckedContinuation { writer in
            lock.withLock { waiting.append((due, writer)) }
            added.signal()
        }
    }

    func run() {
        while true {
            lock.lock()
            guard let earliest = waiting.indices.min(by: { waiting[$0].due < waiting[$1].due }) else {
                lock.unlock()
                added.wait()
                continue
            }
            let due = waiting[earliest].due
            if due <= now() {
                let writer = waiting.remove(at: earliest).writer
                lock.unlock()
                writer.resume()
                continue
            }
            lock.unlock()
            var until = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nil)
        }
    }
}

let pacer = Pacer()
if mode == "pacer" { Thread.detachNewThread { pacer.run() } }
let clock = ContinuousClock()
let start = now() + 100_000_000
let lateness = await withTaskGroup(of: [Double].self) { group in
    for w in 0..<writers {
        group.addTask {
            var due = start + UInt64(w) * interval / UInt64(writers)
            let end = start + UInt64(seconds * 1e9)
            var late: [Double] = []
            while due < end {
                let left = Int64(due) - Int64(now())
                if left > 0 {
                    switch mode {
                    case "pacer": await pacer.wait(until: due)
                    case "zero": try? await Task.sleep(until: clock.now + .nanoseconds(left), tolerance: .zero, clock: clock)
                    default: try? await Task.sleep(until: clock.now + .nanoseconds(left), clock: clock)
                    }
                }
                late.append(Double(Int64(now()) - Int64(due)) / 1e6)
                due += interval
            }
            return late
        }
    }
    var all: [Double] = []
    for await late in group { all += late }
    return all.sorted()
}
func percentile(_ p: Double) -> Double { lateness[min(lateness.count - 1, Int(Double(lateness.count) * p))] }
print(String(format: "%@, %d busy threads, %d wake-ups: lateness p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, longest %.3f ms",
             mode, busy, lateness.count, percentile(0.5), percentile(0.99), percentile(0.999), lateness.last ?? 0))
