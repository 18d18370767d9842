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

extension Logger {
    /// Power-loss rounds cut the power under running stores, whose every later
    /// write then fails: their warnings would bury the rounds' report.
    static var powerLossTesting: Logger {
        var logger = Logger(label: "ringstore")
        logger.logLevel = .error
        return logger
    }
}
