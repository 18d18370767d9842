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
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return UInt64(line.dropFirst(name.count).split(separator: " ").first ?? "")
        }
        return nil
    }
}
