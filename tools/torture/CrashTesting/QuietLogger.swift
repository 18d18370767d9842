import Logging

extension Logger {
    /// The stores that crash testing opens and kills by the hundred log
    /// warnings only, so that the rounds' own report stays readable.
    static var crashTesting: Logger {
        var logger = Logger(label: "ringstore")
        logger.logLevel = .warning
        return logger
    }
}
