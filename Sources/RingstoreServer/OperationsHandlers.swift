import HTTPTypes
import Hummingbird
import Prometheus

/// `/health`, `/metrics`, `/openapi.json` and the browser page at `/`.
extension RingstoreAPI {
    /// 200 `{"status":"ready"}` once every store found at start has been
    /// opened (recovery finished); 503 `{"status":"starting"}` before, and
    /// `"stopping"` once shutdown began. Needs no token.
    func health(_ request: Request, _ context: ServerContext) async throws -> Response {
        if stores.isReady {
            return JSONResponses.json(.ok, Array(#"{"status":"ready"}"#.utf8))
        }
        var headers = HTTPFields()
        headers[.retryAfter] = "\(retryAfter)"
        headers[.contentType] = "application/json"
        let status = stores.hasStarted ? "stopping" : "starting"
        return Response(status: .serviceUnavailable, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(string: #"{"status":"\#(status)"}"#)))
    }

    /// Prometheus text exposition of everything reported through swift-metrics
    /// to this server's registry: the stores' metrics and the requests'.
    func metrics(_ registry: PrometheusCollectorRegistry) -> Response {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 << 10)
        registry.emit(into: &buffer)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }

    /// A resource file shipped in the binary's bundle, served as is.
    static func resource(_ name: String, type: String) -> Response {
        let bytes = ServerResources.load(name)
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The OpenAPI description and the browser page, compiled into the binary
/// (SwiftPM's `embedInCode`), so a copied `ringstore` needs no files beside it.
enum ServerResources {
    static func load(_ name: String) -> [UInt8] {
        switch name {
        case "openapi.json": PackageResources.openapi_json
        case "index.html": PackageResources.index_html
        default: []
        }
    }
}
