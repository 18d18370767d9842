import ArgumentParser
import Ringstore
#if canImport(Glibc)
import Glibc
#endif

/// `ringstore-admin`: offline maintenance of a closed store — verify, compact, dump, stats.
/// Every subcommand takes the store's lock for its whole run, so a store open
/// elsewhere is refused (the message names the holder's pid) and nothing opens
/// it meanwhile.
@main
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringstore-admin",
        abstract: "Offline maintenance of a closed Ringstore store.",
        subcommands: [VerifyCommand.self, CompactCommand.self, DumpCommand.self, StatsCommand.self])
}

/// Opens a session on `directory`, printing the error and exiting 1 when that fails.
func openSession(_ directory: String) throws -> MaintenanceSession {
    do {
        let session = try MaintenanceSession(directory: directory, configuration: try Configuration.fromEnvironment())
        if let note = session.pendingCompaction { printError("ringstore-admin: \(note)") }
        return session
    } catch {
        printError("ringstore-admin: \(describe(error))")
        throw ExitCode(1)
    }
}

func describe(_ error: any Error) -> String {
    (error as? RingstoreError)?.message ?? "\(error)"
}

func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    writeStandardError(line)
}

/// Bytes as MiB with one decimal.
func mebibytes(_ bytes: UInt64) -> String {
    let tenths = (bytes * 10 + (1 << 19)) >> 20
    return "\(tenths / 10).\(tenths % 10) MiB"
}

/// `n` with thousands separators.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// Writes `text` to file descriptor 2 (unbuffered, so the progress bar and messages appear at once).
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let n = write(2, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { break }
            done += n
        }
    }
}
