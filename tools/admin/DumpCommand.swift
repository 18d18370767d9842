import ArgumentParser
import Ringstore

/// `ringstore-admin dump DIR [--stream S] [--from N] [--json]`.
struct DumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print journal records, split-segment entries and stream-file blocks readably.",
        discussion: "Without --stream: the header slots, every journal record of the ring's last lap (from journal position --from), every segment entry and every stream file's blocks. With --stream: only that stream's records, entries and blocks, and its events from version --from.")

    @Argument(help: "The store's folder.") var directory: String
    @Option(help: "Only this stream, with its events.") var stream: String?
    @Option(help: "First version (with --stream) or first journal position.") var from: UInt64 = 0
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        let session = try openSession(directory)
        defer { session.close() }
        var output = ""
        do {
            try session.dump(.init(stream: stream, from: from, json: json)) { line in
                output += line
                output += "\n"
                if output.utf8.count >= 1 << 16 { print(output, terminator: ""); output = "" }
            }
        } catch {
            print(output, terminator: "")
            printError("ringstore-admin: \(describe(error))")
            throw ExitCode(1)
        }
        print(output, terminator: "")
    }
}
