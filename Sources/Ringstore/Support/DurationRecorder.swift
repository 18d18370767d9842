import Synchronization

/// Keeps the most recent durations (a bounded sample) for percentiles in
/// `stats()`, and the longest since the store opened: how long readers waited
/// for the splitter, how long checkpoints took.
final class DurationRecorder: Sendable {
    private struct Samples: ~Copyable {
        var values: [Double] = []
        var next = 0
        var total = 0
        var longest = 0.0
    }
    private let samples = Mutex(Samples())
    private let capacity = 4096

    func record(_ duration: Duration) {
        let milliseconds = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        samples.withLock { s in
            if s.values.count < capacity { s.values.append(milliseconds) } else { s.values[s.next] = milliseconds }
            s.next = (s.next + 1) % capacity
            s.total += 1
            s.longest = max(s.longest, milliseconds)
        }
    }

    var count: Int { samples.withLock { $0.total } }

    var maxMilliseconds: Double { samples.withLock { $0.longest } }

    var p99Milliseconds: Double {
        let values = samples.withLock { $0.values }.sorted()
        guard !values.isEmpty else { return 0 }
        return values[min(values.count - 1, Int(Double(values.count) * 0.99))]
    }
}
