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
        self.stores = StoreService(manager: manager, logger: logger)
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
        router.add(middleware: RequestObserver(metrics: RequestMetrics(factory: metricsFactory), retryAfter: configuration.retryAfterSeconds))
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

    static func addRoutes(to router: Router<ServerContext>, api: RingstoreAPI, registry: PrometheusCollectorRegistry) {
        router.get("/") { _, _ in RingstoreAPI.resource("index.html", type: "text/html; charset=utf-8") }
        router.get("/openapi.json") { _, _ in RingstoreAPI.resource("openapi.json", type: "application/json") }
        router.get("/health", use: api.health)
        router.get("/metrics") { _, _ in api.metrics(registry) }
        router.get("/stores", use: api.listStores)
        router.put("/stores/{store}", use: api.createStore)
        router.get("/stores/{store}/streams", use: api.listStreams)
        router.get("/stores/{store}/stats", use: api.stats)
        router.get("/stores/{store}/all", use: api.readAll)
        router.get("/stores/{store}/all/subscribe", use: api.subscribeAll)
        router.post("/stores/{store}/streams/{stream}", use: api.append)
        router.get("/stores/{store}/streams/{stream}", use: api.readStream)
        router.delete("/stores/{store}/streams/{stream}", use: api.delete)
        router.get("/stores/{store}/streams/{stream}/subscribe", use: api.subscribeStream)
        router.get("/stores/{store}/streams/{stream}/metadata", use: api.metadata)
        router.put("/stores/{store}/streams/{stream}/metadata", use: api.setMetadata)
        router.get("/stores/{store}/streams/{stream}/snapshot", use: api.snapshot)
        router.put("/stores/{store}/streams/{stream}/snapshot", use: api.saveSnapshot)
    }
}
