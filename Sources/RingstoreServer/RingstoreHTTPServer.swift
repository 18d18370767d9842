import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import Ringstore
import ServiceLifecycle

/// `ringstore serve`: the stores under one folder behind an HTTP/JSON API on
/// Hummingbird, with live tails, metrics, an OpenAPI description and a browser page.
///
/// Start-up: the listener opens at once (so `/health` can say "starting"), then
/// ``StoreService`` opens every store found (recovery runs) and the server is
/// ready. Shutdown (SIGTERM or SIGINT through the service group, or
/// ``ServiceGroup/triggerGracefulShutdown()``): the HTTP server stops accepting,
/// finishes the requests in flight (appends included) and ends live tails with a
/// `shutdown` event; then every store closes with a flush, the split finished
/// and a checkpoint. The order comes from the service group: services are shut
/// down in reverse order, and the stores come first in the list.
public struct RingstoreHTTPServer: Sendable {
    public let configuration: ServerConfiguration
    let stores: StoreService
    let registry: PrometheusCollectorRegistry
    let metricsFactory: PrometheusMetricsFactory
    let logger: Logger

    /// - Parameters:
    ///   - registry: where `/metrics` reads from; the request metrics go there
    ///     directly. Bootstrap swift-metrics with ``metricsFactory`` for the
    ///     stores' own metrics to appear too (the command does; tests that run
    ///     several servers in one process cannot, as bootstrapping is once per process).
    public init(configuration: ServerConfiguration, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                logger: Logger = Logger(label: "ringstore.server")) throws {
        self.configuration = configuration
        self.registry = registry
        self.metricsFactory = Self.makeFactory(registry)
        self.logger = logger
        let manager = try StoreManager(root: configuration.dataRoot, configuration: configuration.storeConfiguration)
        self.stores = StoreService(manager: manager, logger: logger, beforeOpening: configuration.beforeOpeningStores)
    }

    /// The factory to bootstrap swift-metrics with so the stores' metrics reach `/metrics`;
    /// durations get buckets from 100 µs to 5 s.
    public static func makeFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .seconds(1), .seconds(5),
        ]
        return factory
    }

    public var metricsFactoryForBootstrap: PrometheusMetricsFactory { metricsFactory }

    /// The service that runs the server; `onListening` gets the bound port (useful with port 0).
    public func makeService(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some Service {
        let api = RingstoreAPI(stores: stores, configuration: configuration)
        let router = Router(context: ServerContext.self)
        router.add(middleware: RequestObserver(metrics: RequestMetrics(factory: metricsFactory), retryAfter: configuration.retryAfterSeconds,
                                               routes: RouteTable(Self.routes)))
        if let token = configuration.token {
            router.add(middleware: BearerToken(token: Array(token.utf8)))
        }
        Self.addRoutes(to: router, api: api, registry: registry)
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            services: [stores],
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Waits until every store found at start is open, or opening one failed (then ``isReady`` is false).
    public func waitUntilReady() async { await stores.waitUntilReady() }

    /// True while the server is ready: its stores open, no shutdown begun.
    public var isReady: Bool { stores.isReady }

    /// Every route: method and path pattern (also what a 405's `Allow` header lists).
    static let routes: [(method: HTTPRequest.Method, path: String)] = [
        (.get, "/"), (.get, "/openapi.json"), (.get, "/health"), (.get, "/metrics"),
        (.get, "/stores"), (.put, "/stores/{store}"),
        (.get, "/stores/{store}/streams"), (.get, "/stores/{store}/stats"),
        (.get, "/stores/{store}/all"), (.get, "/stores/{store}/all/subscribe"),
        (.post, "/stores/{store}/streams/{stream}"), (.get, "/stores/{store}/streams/{stream}"),
        (.delete, "/stores/{store}/streams/{stream}"), (.get, "/stores/{store}/streams/{stream}/subscribe"),
        (.get, "/stores/{store}/streams/{stream}/metadata"), (.put, "/stores/{store}/streams/{stream}/metadata"),
        (.get, "/stores/{store}/streams/{stream}/snapshot"), (.put, "/stores/{store}/streams/{stream}/snapshot"),
    ]

    static func addRoutes(to router: Router<ServerContext>, api: RingstoreAPI, registry: PrometheusCollectorRegistry) {
        for (method, path) in routes {
            router.on(RouterPath(path), method: method, use: handler(method, path, api: api, registry: registry))
        }
    }

    private static func handler(_ method: HTTPRequest.Method, _ path: String, api: RingstoreAPI,
                                registry: PrometheusCollectorRegistry) -> @Sendable (Request, ServerContext) async throws -> Response {
        switch (method, path) {
        case (.get, "/"): { _, _ in RingstoreAPI.resource("index.html", type: "text/html; charset=utf-8") }
        case (.get, "/openapi.json"): { _, _ in RingstoreAPI.resource("openapi.json", type: "application/json") }
        case (.get, "/health"): api.health
        case (.get, "/metrics"): { _, _ in api.metrics(registry) }
        case (.get, "/stores"): api.listStores
        case (.put, "/stores/{store}"): api.createStore
        case (.get, "/stores/{store}/streams"): api.listStreams
        case (.get, "/stores/{store}/stats"): api.stats
        case (.get, "/stores/{store}/all"): api.readAll
        case (.get, "/stores/{store}/all/subscribe"): api.subscribeAll
        case (.post, "/stores/{store}/streams/{stream}"): api.append
        case (.get, "/stores/{store}/streams/{stream}"): api.readStream
        case (.delete, "/stores/{store}/streams/{stream}"): api.delete
        case (.get, "/stores/{store}/streams/{stream}/subscribe"): api.subscribeStream
        case (.get, "/stores/{store}/streams/{stream}/metadata"): api.metadata
        case (.put, "/stores/{store}/streams/{stream}/metadata"): api.setMetadata
        case (.get, "/stores/{store}/streams/{stream}/snapshot"): api.snapshot
        case (.put, "/stores/{store}/streams/{stream}/snapshot"): api.saveSnapshot
        default: { _, _ in throw APIError(.notFound, "notFound", "no such route") }
        }
    }
}
