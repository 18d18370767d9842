import Hummingbird
import NIOCore

/// The request context: Hummingbird's core storage plus the connection's
/// channel, which a live tail closes when its client stops reading.
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
