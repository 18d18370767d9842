import SystemPackage
/// The one error type the library throws.
///
/// Modelled on NIOFS's `FileSystemError`: a stable, matchable ``Code`` (an opaque
/// struct, so new codes can be added without breaking callers), a message a
/// person can act on, the context that explains it (stream, file, offset,
/// current version), the underlying cause when there is one, and where in the
/// library it was raised.
public struct RingstoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Compare with `==` against the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidArgument, invalidStreamName, eventTooLarge, appendTooLarge
            case wrongExpectedVersion, streamNotFound, streamDeleted, idempotencyConflict
            case journalFull, readerTimeout, storeLocked, storeClosed, storeFailed, storeNotFound
            case corruptData, ioError, incompatibleFormat
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// An argument is malformed or out of range.
        public static let invalidArgument = Code(.invalidArgument)
        /// A stream name breaks the naming rules (1-1024 bytes of UTF-8, no NUL, `$` reserved).
        public static let invalidStreamName = Code(.invalidStreamName)
        /// One event is larger than `Configuration.maxEventSize`.
        public static let eventTooLarge = Code(.eventTooLarge)
        /// One append is larger than the journal can hold at once.
        public static let appendTooLarge = Code(.appendTooLarge)
        /// The stream is not at the expected version; see ``RingstoreError/currentVersion``.
        public static let wrongExpectedVersion = Code(.wrongExpectedVersion)
        /// The stream has no events, or was soft-deleted and not written since.
        public static let streamNotFound = Code(.streamNotFound)
        /// The stream was hard-deleted (tombstoned): it can never be written again.
        public static let streamDeleted = Code(.streamDeleted)
        /// Some, but not all, event IDs of an append match an earlier append.
        public static let idempotencyConflict = Code(.idempotencyConflict)
        /// The journal stayed full for longer than the configured wait bound.
        public static let journalFull = Code(.journalFull)
        /// A reader waited longer than the configured bound for its stream to catch up.
        public static let readerTimeout = Code(.readerTimeout)
        /// Another process (or another open store in this one) holds the store's lock.
        public static let storeLocked = Code(.storeLocked)
        /// The store was closed.
        public static let storeClosed = Code(.storeClosed)
        /// No store of that name exists (or is open) under a ``StoreManager``'s root.
        public static let storeNotFound = Code(.storeNotFound)
        /// A write or flush failed; the store accepts no more appends until reopened.
        public static let storeFailed = Code(.storeFailed)
        /// Stored bytes fail their checksum or structure checks.
        public static let corruptData = Code(.corruptData)
        /// A system call failed.
        public static let ioError = Code(.ioError)
        /// The files on disk were written by an incompatible format or configuration.
        public static let incompatibleFormat = Code(.incompatibleFormat)

        public var description: String { String(describing: base) }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A sentence saying what went wrong and, where possible, what to do.
    public var message: String
    /// The stream concerned, if any.
    public var stream: String?
    /// The file concerned, if any.
    public var path: String?
    /// The byte offset in ``path`` (or the journal position) concerned, if any.
    public var offset: UInt64?
    /// For ``Code/wrongExpectedVersion``: the stream's current version (`nil`: no stream).
    public var currentVersion: UInt64?
    /// The error that caused this one, if any.
    public var cause: (any Error & Sendable)?
    /// Where in the library the error was raised.
    public var location: SourceLocation

    /// A source location, kept so that a report points at the code that raised it.
    public struct SourceLocation: Sendable, Hashable {
        public var file: String
        public var line: Int
    }

    public init(
        _ code: Code,
        _ message: String,
        stream: String? = nil,
        path: String? = nil,
        offset: UInt64? = nil,
        currentVersion: UInt64? = nil,
        cause: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.stream = stream
        self.path = path
        self.offset = offset
        self.currentVersion = currentVersion
        self.cause = cause
        self.location = SourceLocation(file: file, line: line)
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }

    /// The message, the context fields and the chain of causes, one per line.
    public func detailedDescription() -> String {
        var lines = ["\(code): \(message)"]
        if let stream { lines.append("  stream: \(stream)") }
        if let path { lines.append("  path: \(path)") }
        if let offset { lines.append("  offset: \(offset)") }
        if let currentVersion { lines.append("  current version: \(currentVersion)") }
        lines.append("  raised at: \(location.file):\(location.line)")
        if let cause {
            if let inner = cause as? RingstoreError {
                lines.append("  caused by: " + inner.detailedDescription())
            } else {
                lines.append("  caused by: \(cause)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension RingstoreError {
    /// True when the process (or the system) ran out of file descriptors
    /// (`EMFILE`, `ENFILE`), here or in an error that caused this one.
    var isOutOfDescriptors: Bool {
        var current: (any Error)? = self
        while let error = current {
            if let errno = error as? Errno, errno == .tooManyOpenFiles || errno == .tooManyOpenFilesInSystem { return true }
            current = (error as? RingstoreError)?.cause
        }
        return false
    }
}
