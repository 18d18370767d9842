import Foundation

/// What the process costs the machine, from `/proc/self`: peak memory and bytes sent to storage.
public enum ProcessMeter {
    /// Resets the peak resident set size (`VmHWM`) by writing 5 to
    /// `/proc/self/clear_refs`, so that each system's run reports its own peak.
    /// Returns false where the kernel does not allow it (then peaks accumulate).
    @discardableResult
    static func resetPeakResident() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// Peak resident set size in bytes since the last reset (`VmHWM`).
    ///
    /// Not `getrusage`'s `ru_maxrss` (only where `/proc` is missing): it
    /// survives `execve`, so a program started by `swift run` (which loads the
    /// package, about 150 MB, then executes the program in its place) reported
    /// swift-run's peak: `swift run -c release ringstore demo` printed 146-167 MiB
    /// where the same binary run directly printed 58-83 MiB. `VmHWM` belongs to
    /// the address space, which `execve` replaces.
    public static var peakResidentBytes: UInt64 {
        if let kilobytes = field("VmHWM:", in: "/proc/self/status") { return kilobytes * 1024 }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return UInt64(usage.ru_maxrss) * 1024
    }

    /// User and system processor time the process has used so far, in seconds
    /// (`getrusage`, every thread). On a machine shared with other work, events
    /// per processor-second compare runs where wall-clock rates do not.
    public static var processorSeconds: (user: Double, system: Double) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return (seconds(usage.ru_utime), seconds(usage.ru_stime))
    }

    /// Bytes this process caused to be sent to storage (`write_bytes` in
    /// `/proc/self/io`: counted when page-cache pages are dirtied, whether by
    /// `write` or through a shared mapping), less `cancelled_write_bytes`
    /// (dirty pages dropped by truncation or deletion). Nil where not available.
    static var storageWriteBytes: UInt64? {
        guard let written = field("write_bytes:", in: "/proc/self/io") else { return nil }
        let cancelled = field("cancelled_write_bytes:", in: "/proc/self/io") ?? 0
        return written >= cancelled ? written - cancelled : 0
    }

    private static func field(_ name: String, in path: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return field(name, inText: text)
    }

    /// The number after `name` on its line of `text` (`/proc` files put spaces
    /// or a tab between them: `/proc/self/status` has `VmHWM:\t  80444 kB`).
    static func field(_ name: String, inText text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return UInt64(line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }
}
