import Logging

/// Log lines on standard error, as swift-log's `StreamLogHandler` writes them,
/// but with metadata kept as given until a line is actually written.
///
/// `StreamLogHandler` renders its metadata to text every time metadata is set.
/// The HTTP server gives every request a logger with its own request ID, so
/// that rendering ran once per request even though, below debug level, no
/// request line is ever written. Here it runs only for lines that pass the level.
struct StandardErrorLogHandler: LogHandler {
    private var inner: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = level
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var handler = inner
        if !metadata.isEmpty { handler.metadata = metadata }
        handler.log(event: event)
    }
}
