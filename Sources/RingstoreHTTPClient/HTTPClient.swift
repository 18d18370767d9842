import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 client on SwiftNIO for the `ringstore` command's `--url`
/// mode and the server's tests: one keep-alive connection per
/// ``HTTPClient/withConnection(host:port:_:)`` call, requests sent one after
/// another on it, bodies either collected whole or read chunk by chunk (for
/// Server-Sent Events).
///
/// async-http-client would do all of this and more, but brings TLS and HTTP/2
/// into every build; a loopback or LAN client of one server needs neither.
public enum HTTPClient {
    /// Connects to `host:port`, runs `body` with the connection, and closes it.
    public static func withConnection<T>(host: String, port: Int, _ body: (HTTPConnection) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = HTTPConnection(host: host, port: port, inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(connection)
        }
    }
}

/// A complete answer.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body as text.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request got no answer.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(description: String) { self.description = description }
}

/// One open connection: send a request, then read its answer, before the next.
public final class HTTPConnection {
    let host: String
    let port: Int
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    init(host: String, port: Int, inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
         outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) {
        self.host = host
        self.port = port
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Sends a request and collects the whole answer.
    public func execute(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> HTTPClientResponse {
        let head = try await start(method, path, headers: headers, body: body)
        var collected: [UInt8] = []
        while let chunk = try await nextChunk() { collected += chunk }
        return HTTPClientResponse(status: Int(head.status.code), headers: head.headers, body: collected)
    }

    /// Sends a request and reads the answer's head; read the body with ``nextChunk()`` until it returns nil.
    public func start(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> HTTPResponseHead {
        var fields = HTTPHeaders(headers)
        if !fields.contains(name: "Host") { fields.add(name: "Host", value: "\(host):\(port)") }
        if let body { fields.replaceOrAdd(name: "Content-Length", value: "\(body.count)") }
        try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: fields)))
        if let body, !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
        while let part = try await inbound.next() {
            switch part {
            case .head(let head):
                if head.status == .continue { continue }
                return head
            case .body, .end:
                continue
            }
        }
        throw HTTPClientError(description: "the server at \(host):\(port) closed the connection without answering \(method) \(path)")
    }

    /// The next piece of the answer's body, or nil at its end.
    public func nextChunk() async throws -> [UInt8]? {
        while let part = try await inbound.next() {
            switch part {
            case .body(let buffer): return Array(buffer.readableBytesView)
            case .end: return nil
            case .head: continue
            }
        }
        throw HTTPClientError(description: "the server at \(host):\(port) closed the connection in the middle of an answer")
    }
}

/// `http://HOST:PORT/PATH` split into its parts (no TLS: plain HTTP only).
public struct HTTPAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The path, without a trailing slash ("" for the root).
    public var path: String

    public init(_ url: String) throws {
        guard url.hasPrefix("http://") else {
            throw HTTPClientError(description: "\(url) must start with http:// (the server speaks plain HTTP)")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        while path.hasSuffix("/") { path.removeLast() }
        var host = String(authority)
        var port = 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(number) else {
                throw HTTPClientError(description: "\(url) has a bad port")
            }
            port = number
            host = String(authority[..<colon])
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw HTTPClientError(description: "\(url) names no host") }
        self.host = host
        self.port = port
        self.path = path
    }
}

/// Percent-encodes a name for one path segment or query value (`/`, `%`, `?`, spaces and anything not plain ASCII).
public func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
        }
    }
    return out
}
