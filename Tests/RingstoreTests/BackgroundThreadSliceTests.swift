import CRingstoreSupport
import Foundation
import Glibc
import Synchronization
import Testing
@testable import Ringstore

/// Background threads (split, checkpoint, mover) run with the longest
/// scheduler slice, so that the journal's threads and the appending tasks
/// preempt them when they wake up; the journal's threads keep the default.
@Suite struct BackgroundThreadSliceTests {
    /// Custom slices exist from Linux 6.12 on; earlier kernels report none.
    static var kernelHasCustomSlices: Bool {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(separator: ".").prefix(2).map { Int($0.prefix { $0.isNumber }) ?? 0 }
        guard parts.count == 2 else { return false }
        return (parts[0], parts[1]) >= (6, 12)
    }

    /// The slice a thread started with `background` sees from inside.
    func sliceSeen(background: Bool) async throws -> UInt64 {
        let seen = Synchronization.Mutex<UInt64?>(nil)
        let thread = BackgroundThread(name: "rs-slice-test", owner: "slice-test-\(background)", background: background)
        try thread.start { seen.withLock { $0 = rs_thread_slice() } }
        await thread.exited()
        return try #require(seen.withLock { $0 }, "the thread ran its body")
    }

    @Test(.enabled(if: kernelHasCustomSlices, "the kernel has no per-thread scheduler slices"))
    func backgroundThreadsTakeTheLongSliceAndOthersKeepTheDefault() async throws {
        #expect(try await sliceSeen(background: true) == BackgroundThread.backgroundSliceNanoseconds)
        let ordinary = try await sliceSeen(background: false)
        #expect(ordinary > 0 && ordinary < BackgroundThread.backgroundSliceNanoseconds,
                "a journal thread keeps the kernel's default slice (\(ordinary) ns)")
    }
}
