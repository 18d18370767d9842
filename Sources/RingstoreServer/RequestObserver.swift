import Dispatch
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Synchronization

/// The outermost middleware: turns every error into a JSON error answer, logs
/// one debug line per request, and counts requests by route, method and status
/// (`ringstore_http_requests_total`) and times them
/// (`ringstore_http_request_duration_seconds`).
///
/// Routes are reported as patterns (`/stores/{store}/streams/{stream}`), never
/// with the names in them, so the number of series stays bounded.
struct RequestObserver: RouterMiddleware {
    typealias Context = ServerContext

    let metrics: RequestMetrics
    let retryAfter: Int
    let routes: RouteTable

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // No route for this method: 405 with the methods the path has, if it has any.
            let allowed = routes.methods(for: request.uri.path)
            if allowed.isEmpty {
                response = Self.errorResponse(error, retryAfter: retryAfter)
            } else {
                let list = allowed.map(\.rawValue).joined(separator: ", ")
                response = APIError(.methodNotAllowed, "methodNotAllowed", "\(request.method.rawValue) is not allowed here; use \(list)").response
                response.headers[.allow] = list
            }
        } catch {
            response = Self.errorResponse(error, retryAfter: retryAfter)
        }
        let nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        let route = context.endpointPath ?? "unmatched"
        metrics.record(route: route, method: request.method.rawValue, status: response.status.code, nanoseconds: nanoseconds)
        context.logger.debug("request", metadata: [
            "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
            "ms": "\(Double(nanoseconds / 1000) / 1000)",
        ])
        return response
    }

    /// Any error as a JSON answer: API and library errors as mapped, the
    /// framework's own (no such route, a body over the limit) with their status,
    /// anything else a 500.
    static func errorResponse(_ error: any Error, retryAfter: Int) -> Response {
        switch error {
        case let error as APIError:
            return error.response
        case let error as HTTPError:
            let code: String = switch error.status {
            case .notFound: "notFound"
            case .methodNotAllowed: "methodNotAllowed"
            case .contentTooLarge: "bodyTooLarge"
            case .badRequest: "badRequest"
            default: "http\(error.status.code)"
            }
            let message = error.body ?? (error.status == .notFound ? "no such route" : error.status.reasonPhrase)
            return APIError(error.status, code, message).response
        default:
            return APIError(.internalServerError, "internal", "\(error)").response
        }
    }
}

/// Request counters and timers, made once per (route, method, status) and kept,
/// through the server's own metrics factory. One lock and one table lookup per
/// request: the counter and the timer of a key are kept together (the timer is
/// shared by every status of a route and method).
final class RequestMetrics: Sendable {
    private let factory: any MetricsFactory
    private struct Key: Hashable {
        var route: String
        var method: String
        var status: Int
    }
    private struct Handles {
        let counter: Counter
        let timer: Metrics.Timer
    }
    private let handles = Mutex<[Key: Handles]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func record(route: String, method: String, status: Int, nanoseconds: UInt64) {
        let key = Key(route: route, method: method, status: status)
        let found = handles.withLock { handles in
            if let found = handles[key] { return found }
            // The route's timer, if another status made it already.
            let timer = handles.first { $0.key.route == route && $0.key.method == method }?.value.timer
                ?? Metrics.Timer(label: "ringstore_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], factory: factory)
            let made = Handles(counter: Counter(label: "ringstore_http_requests_total",
                                                dimensions: [("route", route), ("method", method), ("status", "\(status)")], factory: factory),
                               timer: timer)
            handles[key] = made
            return made
        }
        found.counter.increment()
        found.timer.recordNanoseconds(Int64(clamping: nanoseconds))
    }
}

/// With a token configured, every route but `/health` needs
/// `Authorization: Bearer <token>` (or, for the browser page and `EventSource`,
/// which cannot send that header, `?token=<token>`); anything else is a 401.
struct BearerToken: RouterMiddleware {
    typealias Context = ServerContext

    let token: [UInt8]

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        var offered: Substring?
        if let header = request.headers[.authorization], header.hasPrefix("Bearer ") {
            offered = header.dropFirst("Bearer ".count)
        } else if let query = request.uri.queryParameters["token"] {
            offered = query
        }
        guard let offered, Self.equalInConstantTime(Array(offered.utf8), token) else {
            var response = APIError(.unauthorized, "unauthorized",
                                    offered == nil ? "this server needs a token: send Authorization: Bearer <token>" : "the token is not the right one").response
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }

    /// Compares without stopping at the first difference, so timing tells nothing about the token.
    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

/// The route patterns, to tell "no such path" (404) from "not with this method" (405).
struct RouteTable: Sendable {
    private let routes: [(method: HTTPRequest.Method, segments: [Substring])]

    init(_ routes: [(method: HTTPRequest.Method, path: String)]) {
        self.routes = routes.map { ($0.method, $0.path.split(separator: "/")) }
    }

    /// The methods some route with a pattern matching `path` takes.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var methods: [HTTPRequest.Method] = []
        for route in routes where route.segments.count == segments.count {
            let matches = zip(route.segments, segments).allSatisfy { pattern, segment in pattern.hasPrefix("{") || pattern == segment }
            if matches, !methods.contains(route.method) { methods.append(route.method) }
        }
        return methods
    }
}
