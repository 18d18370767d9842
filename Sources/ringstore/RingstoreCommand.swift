import ArgumentParser

/// The `ringstore` command line.
@main
struct RingstoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringstore",
        abstract: "Ringstore: an event store built around one memory-mapped ring journal.",
        subcommands: [Demo.self, AppendCommand.self, ReadCommand.self, StreamsCommand.self, StatsCommand.self,
                      ImportCommand.self, ExportCommand.self, DeleteCommand.self, MetadataCommand.self, TailCommand.self, BenchCommand.self, ServeCommand.self])

    /// Raises the open-file limit before running the subcommand (see ``OpenFileLimit``).
    static func main() async {
        OpenFileLimit.raiseToHardLimit()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
