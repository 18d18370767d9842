import Glibc
import SystemPackage

/// How a power cut treats the changes that were not durable.
///
/// Disks write whole 512-byte sectors, and the kernel writes back dirty pages
/// in no promised order, so each sector of a file ends up as it was at some
/// moment between its last sync and the cut. The simulation draws, for every
/// unsynced write, whether it reached the disk whole, not at all, or torn (some
/// of its sectors and not others); a sector then holds everything written to it
/// up to the last write that reached it there. Writes are drawn independently,
/// so a later write can survive while an earlier one is lost. A sector never
/// holds a later write without the earlier writes to the same sector, which no
/// page cache could produce.
///
/// Directory changes (creations, `mkdir`, renames, unlinks) not covered by a
/// sync of their directory survive or vanish independently, applied in their
/// order; one whose file is no longer where it expects (a rename whose
/// creation vanished) does nothing.
@_spi(PowerLossTesting)
public struct PowerLossProfile: Sendable, CustomStringConvertible {
    /// Chance that an unsynced write reaches the disk whole (when it is not torn).
    public var writeSurvival: Double
    /// Chance that an unsynced write of two sectors or more is torn.
    public var tearing: Double
    /// Chance that an unsynced directory change survives.
    public var directorySurvival: Double
    /// Path fragments whose unsynced writes always survive whole, and always
    /// vanish: for tests that build one exact outcome.
    public var keepWritesTo: [String] = []
    public var loseWritesTo: [String] = []

    public init(writeSurvival: Double, tearing: Double, directorySurvival: Double,
                keepWritesTo: [String] = [], loseWritesTo: [String] = []) {
        self.writeSurvival = writeSurvival
        self.tearing = tearing
        self.directorySurvival = directorySurvival
        self.keepWritesTo = keepWritesTo
        self.loseWritesTo = loseWritesTo
    }

    /// One of a few shapes, from "nothing unsynced survives" to "everything
    /// does", with and without tearing.
    public static func random(using random: inout some RandomNumberGenerator) -> PowerLossProfile {
        let survival = [0.0, 0.25, 0.5, 0.75, 1.0]
        return PowerLossProfile(writeSurvival: survival.randomElement(using: &random)!,
                                tearing: [0.0, 0.2, 0.5].randomElement(using: &random)!,
                                directorySurvival: [0.0, 0.5, 1.0].randomElement(using: &random)!)
    }

    public var description: String {
        "writes survive \(Int(writeSurvival * 100))%, torn \(Int(tearing * 100))%, directory changes survive \(Int(directorySurvival * 100))%"
    }
}

/// What one materialised power cut threw away.
@_spi(PowerLossTesting)
public struct PowerLossReport: Sendable, CustomStringConvertible {
    public var profile: PowerLossProfile
    /// The operation the cut happened at, if a trigger chose it.
    public var cutAt: PowerLossSimulation.Operation?
    /// Operations the simulation had seen before the cut.
    public var operations = 0
    /// Unsynced writes to the files that survived, and what became of them.
    public var unsyncedWrites = 0
    public var writesLost = 0
    public var writesTorn = 0
    public var unsyncedBytes = 0
    public var bytesLost = 0
    public var unsyncedTruncates = 0
    public var truncatesLost = 0
    public var unsyncedDirectoryChanges = 0
    public var directoryChangesLost = 0
    /// Files and directories written into the new directory.
    public var files = 0
    public var directories = 0

    public var description: String {
        "cut at \(cutAt.map { "\($0)" } ?? "a moment of the test's choosing") after \(operations) operations (\(profile)): "
            + "\(writesLost) of \(unsyncedWrites) unsynced writes lost and \(writesTorn) torn (\(bytesLost) of \(unsyncedBytes) bytes lost), "
            + "\(truncatesLost) of \(unsyncedTruncates) truncations lost, "
            + "\(directoryChangesLost) of \(unsyncedDirectoryChanges) directory changes lost; \(files) files in \(directories) folders left"
    }

    /// Adds another cut's counts (for totals over many rounds).
    public mutating func add(_ other: PowerLossReport) {
        operations += other.operations
        unsyncedWrites += other.unsyncedWrites
        writesLost += other.writesLost
        writesTorn += other.writesTorn
        unsyncedBytes += other.unsyncedBytes
        bytesLost += other.bytesLost
        unsyncedTruncates += other.unsyncedTruncates
        truncatesLost += other.truncatesLost
        unsyncedDirectoryChanges += other.unsyncedDirectoryChanges
        directoryChangesLost += other.directoryChangesLost
        files += other.files
        directories += other.directories
    }
}

extension PowerLossSimulation {
    /// Cuts the power (if not cut yet) and writes what the cut left into
    /// `destination`, a new directory (its parent must exist): the durable
    /// names and bytes, plus the unsynced changes `profile` (by default one
    /// drawn from `seed`) lets through. The same seed gives the same outcome.
    public func materialise(into destination: String, seed: UInt64, profile: PowerLossProfile? = nil) throws -> PowerLossReport {
        cut()
        var random = SeededRandom(seed: seed)
        let profile = profile ?? .random(using: &random)
        let (image, report) = state.withLock { s in
            var report = PowerLossReport(profile: profile, cutAt: s.cutAt, operations: s.operations)
            let image = s.disk.crashImage(profile: profile, random: &random, report: &report)
            return (image, report)
        }
        var result = report
        try Self.makeDirectory(destination)
        for (path, contents) in image {
            let full = destination + "/" + path
            if let contents {
                try Self.writeFile(full, contents)
                result.files += 1
            } else {
                try Self.makeDirectory(full)
                result.directories += 1
            }
        }
        return result
    }

    private static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "power-loss simulation cannot create \(path): \(code)", path: path, cause: code)
        }
    }

    /// Writes a new file directly (test machinery outside any store's seam).
    private static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = Errno(rawValue: errno)
            throw RingstoreError(.ioError, "power-loss simulation cannot create \(path): \(code)", path: path, cause: code)
        }
        defer { _ = Glibc.close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let code = Errno(rawValue: errno)
                throw RingstoreError(.ioError, "power-loss simulation cannot write \(path): \(code)", path: path, cause: code)
            }
            done += n
        }
    }
}

extension SimulatedDisk {
    static let sectorSize: UInt64 = 512

    /// What a power cut leaves, drawn with `random`: the reachable names in
    /// creation order (parents first), each with its bytes (nil for a directory).
    func crashImage(profile: PowerLossProfile, random: inout some RandomNumberGenerator,
                    report: inout PowerLossReport) -> [(path: String, contents: [UInt8]?)] {
        var names = durableNames
        for pending in pendingDirectoryChanges {
            report.unsyncedDirectoryChanges += 1
            if Double.random(in: 0..<1, using: &random) < profile.directorySurvival {
                SimulatedDisk.apply(pending.change, to: &names)
            } else {
                report.directoryChangesLost += 1
            }
        }
        var contents: [Int: [UInt8]] = [:]
        return SimulatedDisk.reachable(names).map { path, entry in
            switch entry {
            case .directory:
                return (path, nil)
            case .file(let id):
                if contents[id] == nil {
                    contents[id] = crashContents(of: files[id] ?? File(), path: path, profile: profile, random: &random, report: &report)
                }
                return (path, contents[id]!)
            }
        }
    }

    /// A file's bytes after the cut (see ``PowerLossProfile`` for the model).
    private func crashContents(of file: File, path: String, profile: PowerLossProfile,
                               random: inout some RandomNumberGenerator, report: inout PowerLossReport) -> [UInt8] {
        let forced: Bool? = profile.keepWritesTo.contains(where: { path.contains($0) }) ? true
            : profile.loseWritesTo.contains(where: { path.contains($0) }) ? false : nil
        func survives() -> Bool { forced ?? (Double.random(in: 0..<1, using: &random) < profile.writeSurvival) }
        // Which sectors of each change reached the disk (a truncation: one flag).
        var reached: [[Bool]] = []
        // The last change that reached each sector: the sector holds what the file had there after it.
        var lastReaching: [UInt64: Int] = [:]
        for (i, (_, change)) in file.pending.enumerated() {
            switch change {
            case .write(let offset, let bytes):
                let sectors = Self.sectors(offset: offset, count: bytes.count)
                let count = sectors.count
                var flags: [Bool]
                if forced == nil, count >= 2, Double.random(in: 0..<1, using: &random) < profile.tearing {
                    flags = (0..<count).map { _ in Bool.random(using: &random) }
                    if !flags.contains(true) || !flags.contains(false) {
                        let flip = Int.random(in: 0..<count, using: &random)
                        flags[flip].toggle()
                    }
                } else {
                    flags = [Bool](repeating: survives(), count: count)
                }
                for (k, sector) in sectors.enumerated() where flags[k] { lastReaching[sector] = i }
                reached.append(flags)
            case .truncate:
                reached.append([survives()])
            }
        }
        var bytes = file.durable
        for (i, (_, change)) in file.pending.enumerated() {
            switch change {
            case .write(let offset, let data):
                report.unsyncedWrites += 1
                report.unsyncedBytes += data.count
                var landed = 0
                let sectors = Self.sectors(offset: offset, count: data.count)
                for sector in sectors {
                    let low = max(offset, sector * Self.sectorSize)
                    let high = min(offset + UInt64(data.count), (sector + 1) * Self.sectorSize)
                    guard let last = lastReaching[sector], last >= i else {
                        report.bytesLost += Int(high - low)
                        continue
                    }
                    landed += 1
                    if bytes.count < Int(high) { bytes += [UInt8](repeating: 0, count: Int(high) - bytes.count) }
                    bytes.replaceSubrange(Int(low)..<Int(high), with: data[Int(low - offset)..<Int(high - offset)])
                }
                if landed == 0 && !sectors.isEmpty { report.writesLost += 1 } else if landed < sectors.count { report.writesTorn += 1 }
            case .truncate(let size):
                report.unsyncedTruncates += 1
                if reached[i][0] { SimulatedDisk.resize(&bytes, to: Int(size)) } else { report.truncatesLost += 1 }
            }
        }
        return bytes
    }

    /// The sector numbers a write of `count` bytes at `offset` touches.
    private static func sectors(offset: UInt64, count: Int) -> [UInt64] {
        guard count > 0 else { return [] }
        return Array((offset / sectorSize)...((offset + UInt64(count) - 1) / sectorSize))
    }
}
