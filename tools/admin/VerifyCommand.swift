import ArgumentParser
import Ringstore

/// `ringstore-admin verify DIR`: checks every checksum; exit 1 naming each problem.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every checksum and cross-reference of a closed store (read-only).",
        discussion: "Prints one line per problem (file, offset, what is wrong) and exits 1; exits 0 when the store is clean. Findings marked harmless (a leftover of an earlier lap of the ring, a tail that opening recovers) do not count.")

    @Argument(help: "The store's folder.") var directory: String

    func run() async throws {
        let session = try openSession(directory)
        defer { session.close() }
        let bar = ProgressBar()
        let report = session.verify { bar.update("verify", $0, $1) }
        bar.finish()
        for finding in report.findings { print(finding) }
        let rate = report.seconds > 0 ? Double(report.bytesRead) / 1_048_576 / report.seconds : 0
        let verdict = report.isClean ? "clean" : "\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")"
        printError("verify: \(verdict); \(grouped(report.inventory.streamFiles)) stream files, \(grouped(report.inventory.blocks)) blocks, \(grouped(report.inventory.events)) events, \(grouped(report.inventory.globalIndexEntries)) index entries; read \(mebibytes(report.bytesRead)) in \(String(format3(report.seconds))) s (\(Int(rate)) MiB/s)")
        if !report.isClean { throw ExitCode(1) }
    }
}

/// Seconds with three decimals.
func format3(_ seconds: Double) -> String {
    let millis = Int((seconds * 1000).rounded())
    let fraction = String(millis % 1000)
    return "\(millis / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
}
