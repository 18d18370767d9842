import Foundation
import Glibc
import RingstoreBench

/// A one-line progress bar on a terminal; occasional plain lines otherwise.
struct Progress {
    let total: Int
    let label: String
    let interactive = isatty(STDERR_FILENO) == 1
    private var lastPrinted = -1

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    mutating func update(_ done: Int, detail: String = "") {
        let percent = total == 0 ? 100 : min(100, done * 100 / total)
        if interactive {
            let width = 30
            let filled = width * percent / 100
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) \(bar) \(percent)% \(detail)    ".utf8))
        } else if percent / 25 != lastPrinted / 25 {
            FileHandle.standardError.write(Data("\(label): \(percent)% \(detail)\n".utf8))
        }
        lastPrinted = percent
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Formats rows as an aligned two-column table.
func table(_ rows: [(String, String)]) -> String {
    let width = rows.map(\.0.count).max() ?? 0
    return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
}

extension Double {
    func formatted(_ digits: Int) -> String { String(format: "%.\(digits)f", self) }
}

/// `n` with thousands separators ("1,234,567"). Not `NumberFormatter`: it loads
/// ICU's locale data, about 3 MiB of resident memory for a progress line.
func grouped(_ n: Int) -> String { BenchReport.grouped(n) }

func megabytes(_ bytes: UInt64) -> String { (Double(bytes) / 1_048_576).formatted(1) + " MiB" }
