import ArgumentParser
import Foundation
import Synchronization
import Logging
import Ringstore

/// `--data DIR` (an embedded store) or `--url http://HOST:PORT/stores/NAME`
/// (a store of a running `ringstore serve`): what a subcommand works on.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Store folder (an embedded store; created if missing).")
    var dataOption: String?

    @Option(name: .customLong("url"), help: "A store of a running server: http://HOST:PORT/stores/NAME.")
    var url: String?

    @Option(help: "With --url: the server's bearer token (default: $RINGSTORE_TOKEN).")
    var token: String?

    func validate() throws {
        guard (dataOption != nil) != (url != nil) else { throw ValidationError("give either --data DIR or --url http://HOST:PORT/stores/NAME") }
        if token != nil, url == nil { throw ValidationError("--token goes with --url") }
    }

    /// The folder (only called when `--url` is absent; `validate()` makes sure one of them is given).
    var data: String { dataOption ?? "" }

    /// The server's store, when `--url` is given.
    func remote() throws -> RemoteStore? {
        guard let url else { return nil }
        let environmentToken = ProcessInfo.processInfo.environment["RINGSTORE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return try RemoteStore(url: url, token: token ?? environmentToken)
    }

    /// Opens the store with settings from RINGSTORE_* variables, runs `body`, and always closes it
    /// (on SIGINT or SIGTERM too, then exiting with `exitStatusOnSignal`, by default 128 + the signal).
    func withStore<T>(create: Bool = true, exitStatusOnSignal: Int32? = nil, _ body: (EventStore) async throws -> T) async throws -> T {
        try rejectArgumentsThatAreNotUTF8()
        guard create || FileManager.default.fileExists(atPath: data) else {
            throw ValidationError("no store at \(data)")
        }
        let store = try await EventStore.open(at: data, configuration: try Configuration.fromEnvironment(), logger: .commandLine)
        let signals = GracefulShutdown(closing: store, exitStatusOnSignal: exitStatusOnSignal)
        defer { signals.cancel() }
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            await signals.exitIfSignalled()
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

/// Closes the store cleanly on SIGINT or SIGTERM (flush, finish the split,
/// checkpoint, release the lock), then exits with the conventional status
/// (130 or 143) — or 0 for commands, like `tail`, that run until interrupted.
final class GracefulShutdown: @unchecked Sendable {
    // @unchecked Sendable: the sources are set once in init and only cancelled
    // afterwards; DispatchSource itself is thread-safe.
    private let sources: [any DispatchSourceSignal]
    /// The signal that began the close (0: none yet), shared with the handlers.
    private final class Received: Sendable {
        let signal = Atomic<Int32>(0)
    }
    private let received = Received()

    /// `afterClose` runs once the store is closed, just before exiting (e.g. to remove a temporary folder).
    init(closing store: EventStore, exitStatusOnSignal: Int32? = nil, afterClose: @escaping @Sendable () -> Void = {}) {
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [received] in
                received.signal.store(signalNumber, ordering: .releasing)
                Task {
                    try? await store.close()
                    afterClose()
                    exit(exitStatusOnSignal ?? 128 + signalNumber)
                }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func cancel() {
        for source in sources { source.cancel() }
    }

    /// For a command whose work failed: if a signal began closing the store
    /// (which is why the work failed), waits for the handler to finish the
    /// close and exit with the signal's status, rather than exiting first with
    /// the work's error and a half-closed store. Returns if no signal came.
    func exitIfSignalled() async {
        guard received.signal.load(ordering: .acquiring) != 0 else { return }
        while true { try? await Task.sleep(for: .seconds(3600)) }  // the handler exits the process
    }
}

extension Logger {
    /// The store's log for a command: warnings only (journal full, splitter
    /// failures), on standard error, so that output stays clean.
    static var commandLine: Logger {
        var logger = Logger(label: "ringstore")
        logger.logLevel = .warning
        return logger
    }
}
