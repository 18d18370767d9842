import SystemPackage

/// Opens, tracks and closes several named stores under one root folder; each
/// store is a sub-folder with its own journal, stream files and lock.
///
/// Names are 1-128 bytes of ASCII letters, digits, `-`, `_` and `.`, not
/// beginning with `.`, so that a name is always one safe folder name. An actor:
/// opening or closing one store never blocks work on the others, and concurrent
/// calls for the same name wait for each other instead of racing for its lock.
public actor StoreManager {
    /// What ``list()`` reports about one store.
    public struct StoreInfo: Sendable, Hashable {
        /// The store's name (its folder under the root).
        public var name: String
        /// Its directory.
        public var path: String
        /// Whether this manager has it open.
        public var isOpen: Bool
    }

    /// The folder holding the stores.
    public nonisolated let root: String
    /// The configuration ``open(_:configuration:create:)`` uses when given none.
    public let defaultConfiguration: Configuration

    private var stores: [String: EventStore] = [:]
    /// Opens and closes under way, so that a second call for the same name waits for the first.
    private var pending: [String: Task<Void, Never>] = [:]

    /// A manager for the stores in `root`, creating that folder (not its parents) if needed.
    public init(root: String, configuration: Configuration = Configuration()) throws {
        let path = FilePath(root)
        if !StorageDirectory.isDirectory(path) {
            let parent = path.removingLastComponent()
            guard parent.isEmpty || StorageDirectory.isDirectory(parent) else {
                throw RingstoreError(.invalidArgument, "cannot create the stores' root \(root): its parent folder \(parent) does not exist", path: root)
            }
            try StorageDirectory.create(path)
        }
        self.root = root
        self.defaultConfiguration = configuration
    }

    /// Opens (creating it, unless `create` is false) the store `name`, or
    /// returns it if this manager has it open already.
    ///
    /// - Throws: `.invalidArgument` for a bad name, `.storeNotFound` when it does
    ///   not exist and `create` is false, `.storeLocked` if another process has it open.
    public func open(_ name: String, configuration: Configuration? = nil, create: Bool = true) async throws -> EventStore {
        try Self.validateName(name)
        await settle(name)
        if let store = stores[name] { return store }
        let path = directory(of: name)
        if !create && !StorageDirectory.exists(FilePath(path).appending(Journal.fileName)) {
            throw RingstoreError(.storeNotFound, "there is no store named \"\(name)\" in \(root)", path: path)
        }
        let (done, finish) = Self.gate()
        pending[name] = done
        defer { pending[name] = nil; finish() }
        let store = try await EventStore.open(at: path, configuration: configuration ?? defaultConfiguration)
        stores[name] = store
        return store
    }

    /// The open store `name`, or nil if this manager does not have it open.
    public func store(named name: String) -> EventStore? { stores[name] }

    /// Closes the store `name` (see ``EventStore/close()``).
    ///
    /// - Throws: `.storeNotFound` if this manager does not have it open.
    public func close(_ name: String) async throws {
        await settle(name)
        guard let store = stores.removeValue(forKey: name) else {
            throw RingstoreError(.storeNotFound, "no store named \"\(name)\" is open in \(root)", path: directory(of: name))
        }
        let (done, finish) = Self.gate()
        pending[name] = done
        defer { pending[name] = nil; finish() }
        try await store.close()
    }

    /// Closes every open store; throws the first failure after trying them all.
    public func closeAll() async throws {
        var firstFailure: (any Error)?
        for name in stores.keys.sorted() {
            do { try await close(name) } catch { firstFailure = firstFailure ?? error }
        }
        if let firstFailure { throw firstFailure }
    }

    /// Every store under the root (a folder holding a journal) and every open one, sorted by name.
    public func list() throws -> [StoreInfo] {
        var names = Set(stores.keys)
        for entry in try StorageDirectory.entries(of: FilePath(root)) where (try? Self.validateName(entry)) != nil {
            if StorageDirectory.exists(FilePath(directory(of: entry)).appending(Journal.fileName)) { names.insert(entry) }
        }
        return names.sorted().map { StoreInfo(name: $0, path: directory(of: $0), isOpen: stores[$0] != nil) }
    }

    /// Throws unless `name` is a valid store name (see ``StoreManager``).
    public static func validateName(_ name: String) throws {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 128 else {
            throw RingstoreError(.invalidArgument, "a store name must be 1-128 bytes (got \(bytes.count))")
        }
        guard bytes[0] != UInt8(ascii: ".") else {
            throw RingstoreError(.invalidArgument, "a store name must not begin with '.' (got \"\(name)\")")
        }
        let allowed = { (byte: UInt8) -> Bool in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): true
            default: false
            }
        }
        if let bad = bytes.first(where: { !allowed($0) }) {
            let shown = bad < 0x20 || bad >= 0x7f ? "byte 0x\(String(bad, radix: 16))" : "'\(Character(Unicode.Scalar(bad)))'"
            throw RingstoreError(.invalidArgument,
                                 "a store name may hold only ASCII letters, digits, '-', '_' and '.'; \"\(name)\" has \(shown)")
        }
    }

    private nonisolated func directory(of name: String) -> String { FilePath(root).appending(name).string }

    /// Waits until no open or close of `name` is under way.
    private func settle(_ name: String) async {
        while let task = pending[name] { await task.value }
    }

    /// A task that finishes when `finish` is called.
    private static func gate() -> (Task<Void, Never>, @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let task = Task { for await _ in stream {} }
        return (task, { continuation.finish() })
    }
}
