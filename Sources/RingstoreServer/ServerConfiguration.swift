import Logging
import Ringstore

/// What `ringstore serve` is told: where the stores live, where to listen, the
/// token, and the limits of live tails.
public struct ServerConfiguration: Sendable {
    /// The folder holding the stores (each a sub-folder; see ``StoreManager``).
    public var dataRoot: String
    /// Address to bind; 127.0.0.1 by default, so a server is not reachable from
    /// other machines unless asked to be.
    public var host: String = "127.0.0.1"
    /// Port to bind (2113 by default; 0 picks a free one, reported once listening).
    public var port: Int = 2113
    /// When set, every route but `/health` requires `Authorization: Bearer <token>`.
    public var token: String?
    /// Settings of every store the server opens or creates.
    public var storeConfiguration: Configuration = Configuration()
    /// How far (in journal bytes) a live tail may fall behind the newest
    /// acknowledged event, once it has caught up, before the server ends it with
    /// a final `too-slow` event; nil: the store's journal capacity (a follower
    /// further behind than a whole ring reads only from stream files).
    public var liveMaxLagBytes: UInt64?
    /// How long one write to a live tail's connection may stay blocked (the
    /// client reads nothing) before the server closes that connection.
    public var liveWriteTimeout: Duration = .seconds(30)
    /// `Retry-After` (seconds) on 503 answers: the ring full, a reader timeout,
    /// stores still opening or closing.
    public var retryAfterSeconds: Int = 1

    /// Tests only: awaited before the stores are opened, so a test can look at the
    /// server while it is still starting.
    var beforeOpeningStores: (@Sendable () async -> Void)?

    public init(dataRoot: String) {
        self.dataRoot = dataRoot
    }

    /// Parses `HOST:PORT` (`[::1]:PORT` for IPv6), as `--http` takes it.
    public static func parseAddress(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":") else {
            throw RingstoreError(.invalidArgument, "--http \(text): expected HOST:PORT, e.g. 127.0.0.1:2113")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw RingstoreError(.invalidArgument, "--http \(text): expected HOST:PORT with a port from 0 to 65535")
        }
        return (host, port)
    }
}
