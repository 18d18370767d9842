import Glibc
import Synchronization
import SystemPackage

/// A simulated power cut under one store directory, for tests and
/// `ringstore-torture --power-loss`: the storage seam (``StorageFile``,
/// ``StorageDirectory``) reports every write, truncate, file creation, `mkdir`,
/// rename, unlink and `rmdir` under the root, and every sync, and the simulation keeps
/// what a power cut could not take away apart from what it could (see
/// ``SimulatedDisk``). ``cut()`` then freezes it — from that moment every
/// change by the still-running store fails with `EIO` and nothing it does counts
/// — and ``materialise(into:seed:profile:)`` writes what a power cut could have
/// left into a new directory, choosing at random which unsynced changes reached
/// the disk (see ``PowerLossProfile``).
///
/// The anchors are SQLite's crash-test VFS (unsynced writes lost or torn at
/// sector granularity) and FoundationDB's simulated disks (a machine killed at
/// any moment, then restarted from what its disk kept).
///
/// Not installed, it costs the seam one relaxed atomic load per call. Only
/// reachable through `@_spi(PowerLossTesting)` or `@testable import`, so no user
/// switches it on by accident. Installed, it skips the real `fdatasync`,
/// `fsync` and `syncfs` calls under its root (the simulation alone decides what
/// is durable), so rounds run at memory speed.
@_spi(PowerLossTesting)
public final class PowerLossSimulation: Sendable {
    /// One operation of the seam, as a cut trigger sees it.
    public struct Operation: Sendable, CustomStringConvertible {
        public enum Kind: String, Sendable {
            case write, truncate, create, makeDirectory, rename, remove, removeDirectory
            case syncFile, syncDirectory, syncFileSystem
            /// A commit of the file system's journal (``FileSystemCommit``): every directory entry, no file's data.
            case commitFileSystem
        }
        public var kind: Kind
        /// The path relative to the root ("" for the root itself).
        public var path: String
        /// Where a write lands in its file.
        public var offset: UInt64?

        public var description: String { "\(kind.rawValue) \(path)" + (offset.map { " at \($0)" } ?? "") }
    }

    /// The directory the simulation covers, as given to ``install(root:)``, normalised.
    public let root: String

    struct Trigger {
        var remaining: Int
        var matches: @Sendable (Operation) -> Bool
    }

    struct State: ~Copyable {
        var disk = SimulatedDisk()
        var cut = false
        /// The operation the cut happened at, if a trigger cut it, and when.
        var cutAt: Operation?
        var cutTime: ContinuousClock.Instant?
        var operations = 0
        var trigger: Trigger?
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextWaiter = 0
        /// Files changed under the root that the simulation never saw created (a bypass of the seam).
        var untracked: [String] = []
        /// Changes refused after the cut.
        var refusedAfterCut = 0
    }

    let state = Mutex(State())

    private init(root: String) {
        self.root = root
    }

    // MARK: - Installing

    private static let anyInstalled = Atomic<Bool>(false)
    private static let installed = Mutex<[PowerLossSimulation]>([])

    /// Starts simulating under `root` (an existing directory): everything on disk
    /// there now counts as durable.
    public static func install(root: String) throws -> PowerLossSimulation {
        let normalised = FilePath(root).lexicallyNormalized().string
        let simulation = PowerLossSimulation(root: normalised)
        try simulation.state.withLock { s in try simulation.scan("", into: &s.disk) }
        try installed.withLock { list in
            if list.contains(where: { Self.overlaps($0.root, normalised) }) {
                throw RingstoreError(.invalidArgument, "a power-loss simulation already covers \(root) or a folder around it", path: root)
            }
            list.append(simulation)
            anyInstalled.store(true, ordering: .releasing)
        }
        return simulation
    }

    /// Stops simulating (the files on disk stay as the store left them).
    public func uninstall() {
        Self.installed.withLock { list in
            list.removeAll { $0 === self }
            if list.isEmpty { Self.anyInstalled.store(false, ordering: .releasing) }
        }
    }

    private static func overlaps(_ a: String, _ b: String) -> Bool {
        a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/")
    }

    /// True while some simulation is installed: the seam's one relaxed load.
    @inline(__always)
    static var isActive: Bool { _slowPath(anyInstalled.load(ordering: .relaxed)) }

    /// The simulation covering `path`, and the path relative to its root.
    static func covering(_ path: String) -> (simulation: PowerLossSimulation, relative: String)? {
        installed.withLock { list in
            for simulation in list {
                if let relative = simulation.relative(path) { return (simulation, relative) }
            }
            return nil
        }
    }

    func relative(_ path: String) -> String? {
        let path = path.contains("//") || path.hasSuffix("/") ? FilePath(path).lexicallyNormalized().string : path
        if path == root { return "" }
        guard path.hasPrefix(root), path.utf8.count > root.utf8.count + 1,
              path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: root.utf8.count)] == UInt8(ascii: "/")
        else { return nil }
        return String(path.utf8.dropFirst(root.utf8.count + 1))!
    }

    // MARK: - Cutting

    /// Arms a cut at the `count`-th operation (from now) that `matches` accepts:
    /// that operation fails with `EIO` instead of happening. `matches` runs under
    /// the simulation's lock and must not call into it.
    public func cut(afterOperations count: Int, where matches: @escaping @Sendable (Operation) -> Bool = { _ in true }) {
        precondition(count >= 1, "a cut needs at least one operation to happen at")
        state.withLock { $0.trigger = Trigger(remaining: count, matches: matches) }
    }

    /// Cuts the power now (does nothing if already cut).
    public func cut() {
        let waiters = state.withLock { s in Self.freeze(&s, at: nil) }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// True once the power is cut.
    public var isCut: Bool { state.withLock { $0.cut } }

    /// The operation a trigger cut the power at, if any.
    public var cutOperation: Operation? { state.withLock { $0.cutAt } }

    /// When the power was cut.
    public var cutTime: ContinuousClock.Instant? { state.withLock { $0.cutTime } }

    /// Operations seen so far (writes, truncates, creations, directory changes, syncs).
    public var operationCount: Int { state.withLock { $0.operations } }

    /// Changes refused because they came after the cut.
    public var refusedAfterCut: Int { state.withLock { $0.refusedAfterCut } }

    /// Files changed under the root that the simulation never saw created or
    /// found at installation: something bypassed the seam (should be empty).
    public var untrackedFiles: [String] { state.withLock { $0.untracked } }

    /// Waits until the power is cut (true) or `timeout` passes (false).
    public func waitForCut(timeout: Duration) async -> Bool {
        let id: Int? = state.withLock { s in
            if s.cut { return nil }
            s.nextWaiter += 1
            return s.nextWaiter
        }
        guard let id else { return true }
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let cutAlready = state.withLock { s in
                if s.cut { return true }
                s.waiters[id] = continuation
                return false
            }
            if cutAlready { continuation.resume(returning: true) }
        }
    }

    /// Marks the simulation cut and returns the waiters to resume (outside the lock).
    static func freeze(_ s: inout State, at operation: Operation?) -> [CheckedContinuation<Bool, Never>] {
        guard !s.cut else { return [] }
        s.cut = true
        s.cutAt = operation
        s.cutTime = .now
        s.trigger = nil
        defer { s.waiters.removeAll() }
        return Array(s.waiters.values)
    }

    // MARK: - Scanning at installation

    /// Adopts every directory and regular file under `relative` as durable.
    private func scan(_ relative: String, into disk: inout SimulatedDisk) throws {
        let folder = relative.isEmpty ? root : root + "/" + relative
        for name in try StorageDirectory.entries(of: FilePath(folder)) {
            let child = relative.isEmpty ? name : relative + "/" + name
            let path = root + "/" + child
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                disk.adoptDirectory(at: child)
                try scan(child, into: &disk)
            case S_IFREG:
                _ = disk.adopt(SimulatedDisk.Inode(info), at: child, contents: try Self.readWhole(path))
            default:
                continue
            }
        }
    }

    /// A file's bytes, read directly (this is test machinery, not the store's I/O).
    static func readWhole(_ path: String) throws -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "power-loss simulation cannot read \(path): \(code)", path: path, cause: code)
        }
        defer { _ = Glibc.close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                let code = Errno(rawValue: errno)
                throw RingstoreError(.ioError, "power-loss simulation cannot read \(path): \(code)", path: path, cause: code)
            }
            if n == 0 { return result }
            result += chunk[0..<n]
        }
    }
}

extension SimulatedDisk.Inode {
    init(_ info: stat) {
        self.init(device: UInt64(info.st_dev), number: UInt64(info.st_ino))
    }
}
