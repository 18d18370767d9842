#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal
/// (so logs and pipes get the summary alone); redrawn at most every 1 %.
final class ProgressBar: @unchecked Sendable {
    // @unchecked: used from the one task that runs the command.
    private let enabled = isatty(2) != 0
    private var last = (phase: "", percent: -1)

    func update(_ phase: String, _ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let percent = min(100, done * 100 / total)
        guard (phase, percent) != last else { return }
        last = (phase, percent)
        let width = 30
        let filled = percent * width / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        writeStandardError("\r\(phase.padding(8)) [\(bar)] \(percent)% \(done)/\(total)\u{1B}[K")
    }

    func finish() {
        guard enabled, last.percent >= 0 else { return }
        writeStandardError("\r\u{1B}[K")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
