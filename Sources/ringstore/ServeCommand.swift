import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import Ringstore
import RingstoreServer
import ServiceLifecycle

/// `ringstore serve`: the HTTP server over every store under `--data`.
///
/// Prints `ringstore: listening on http://HOST:PORT` once bound and
/// `ringstore: ready` once every store is open (recovery finished), each on
/// its own line on standard output, so scripts and tests can wait for them.
/// SIGTERM or SIGINT stop it gracefully (see ``RingstoreHTTPServer``); it then
/// exits with status 0.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the stores under a folder over HTTP (JSON API, live tails, metrics, a browser page).")

    @Option(help: "Folder holding the stores, one sub-folder each (created if missing).") var data: String
    @Option(help: "Address to listen on, HOST:PORT (port 0: any free port).") var http = "127.0.0.1:2113"
    @Option(help: "Require this bearer token on every route but /health (default: $RINGSTORE_TOKEN).") var token: String?
    @Option(help: "Log level: trace, debug (one line per request), info, notice, warning, error.") var logLevel = "info"
    @Option(help: "End a live tail that falls this many journal bytes behind once caught up (default: the journal's size).")
    var liveMaxLagBytes: UInt64?

    func run() async throws {
        try rejectArgumentsThatAreNotUTF8()
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level \(logLevel) must be one of trace, debug, info, notice, warning, error, critical")
        }
        try await reportingErrors {
            let address = try ServerConfiguration.parseAddress(http)
            var configuration = ServerConfiguration(dataRoot: data)
            configuration.host = address.host
            configuration.port = address.port
            let environmentToken = ProcessInfo.processInfo.environment["RINGSTORE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            configuration.token = token ?? environmentToken
            configuration.storeConfiguration = try Configuration.fromEnvironment()
            configuration.liveMaxLagBytes = liveMaxLagBytes
            LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, level: level) }
            let logger = Logger(label: "ringstore")
            let server = try RingstoreHTTPServer(configuration: configuration, logger: logger)
            MetricsSystem.bootstrap(server.metricsFactoryForBootstrap)
            let host = address.host.contains(":") ? "[\(address.host)]" : address.host
            let service = server.makeService { port in
                Self.say("ringstore: listening on http://\(host):\(port)")
                Task {
                    await server.waitUntilReady()
                    if server.isReady { Self.say("ringstore: ready") }
                }
            }
            let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    private static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
