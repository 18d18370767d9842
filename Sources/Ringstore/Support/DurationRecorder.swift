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

    /// Forgets the longest so far (``maxMilliseconds`` then counts from here);
    /// the kept samples stay.
    func resetLongest() { samples.withLock { $0.longest = 0 } }

    /// The 99th percentile of the kept samples.
    ///
    /// Found by selection (quickselect: linear on average), not by sorting the
    /// 4,096 samples: `stats()` asks for it, and a monitor that polls `stats()`
    /// several times a second (the benchmark's progress line does) spent more
    /// on these sorts than the store spent on hundreds of appends.
    var p99Milliseconds: Double {
        var values = samples.withLock { $0.values }
        guard !values.isEmpty else { return 0 }
        return Self.select(min(values.count - 1, Int(Double(values.count) * 0.99)), in: &values)
    }

    /// The value that would be at `rank` if `values` were sorted; reorders `values`.
    static func select(_ rank: Int, in values: inout [Double]) -> Double {
        var low = 0
        var high = values.count - 1
        while low < high {
            // Median of three as the pivot: already sorted input stays linear.
            let middle = low + (high - low) / 2
            let pivot = max(min(values[low], values[middle]), min(max(values[low], values[middle]), values[high]))
            var i = low
            var j = high
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j {
                    values.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Now values[low...j] <= pivot <= values[i...high], and values between j and i equal the pivot.
            if rank <= j {
                high = j
            } else if rank >= i {
                low = i
            } else {
                return values[rank]
            }
        }
        return values[rank]
    }
}
