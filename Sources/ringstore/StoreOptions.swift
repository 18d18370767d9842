import ArgumentParser
import Foundation
import Ringstore

/// `--data DIR`: the embedded store a subcommand works on.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "Store folder (an embedded store; created if missing).")
    var data: String

    /// Opens the store with settings from RINGSTORE_* variables, runs `body`, and always closes it.
    func withStore<T>(create: Bool = true, _ body: (EventStore) async throws -> T) async throws -> T {
        guard create || FileManager.default.fileExists(atPath: data) else {
            throw ValidationError("no store at \(data)")
        }
        let store = try await EventStore.open(at: data, configuration: try Configuration.fromEnvironment())
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }
}

/// Prints a `RingstoreError` as the message a person needs, and exits non-zero.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RingstoreError {
        FileHandle.standardError.write(Data("ringstore: \(error.message)\n".utf8))
        throw ExitCode(error.code == .wrongExpectedVersion ? 3 : 1)
    }
}
