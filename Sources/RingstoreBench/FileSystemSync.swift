import CRingstoreSupport
import Foundation

/// Writes back every dirty page of the file system holding a folder (`syncfs`),
/// so that one system's run does not pay for the previous one's writeback.
public enum FileSystemSync {
    /// Syncs the file system holding `folder`; returns the seconds it took.
    @discardableResult
    public static func sync(_ folder: String) throws -> Double {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw BenchError("cannot open \(folder) to sync its file system: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let clock = ContinuousClock()
        let started = clock.now
        while rs_syncfs(fd) != 0 {
            guard errno == EINTR else {
                throw BenchError("syncfs of \(folder) failed: \(String(cString: strerror(errno)))")
            }
        }
        return started.duration(to: clock.now).seconds
    }
}
