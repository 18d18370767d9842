import Foundation
import Glibc

/// Starts a crash-test writer process, kills it with SIGKILL at a chosen
/// moment after it has begun acknowledging, and returns what it acknowledged.
public enum CrashRound {
    public struct Outcome: Sendable {
        public var acknowledgements: [Acknowledgement]
        /// Every append the writer began to send (acknowledged or not).
        public var sendings: [Sending]
        /// How long the writer ran after its first acknowledgement (or the chosen output) before the kill.
        public var killedAfter: Duration
        /// Whether the output that starts the kill delay appeared (not a give-up after 120 s, nor an exit).
        public var markerSeen: Bool
        public var terminationSignal: Int32?
    }

    /// - Parameters:
    ///   - executable: the `ringstore-torture` binary.
    ///   - arguments: its arguments (the `writer` subcommand and options).
    ///   - killDelay: how long to let it acknowledge before the kill.
    ///   - startingAt: the output that starts `killDelay` (default: the first acknowledgement).
    public static func run(executable: String, arguments: [String], killDelay: Duration,
                           startingAt marker: String = "ACK ", scratch: String) throws -> Outcome {
        let output = scratch + "/writer-\(UUID().uuidString).out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = FileHandle.nullDevice
        try process.run()

        // Wait for the first acknowledgement, or `marker` (or give up after 120 s: a loaded machine can take long to start it), then let it run.
        let clock = ContinuousClock()
        let startWait = clock.now
        var markerSeen = false
        while clock.now - startWait < .seconds(120), process.isRunning {
            if let text = try? String(contentsOfFile: output, encoding: .utf8), text.contains(marker) {
                markerSeen = true
                break
            }
            usleep(2_000)
        }
        let running = clock.now
        usleep(UInt32(max(0, killDelay.nanosecondsApprox / 1000)))
        let killedAfter = clock.now - running
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let signal = process.terminationReason == .uncaughtSignal ? process.terminationStatus : nil
        return Outcome(acknowledgements: Acknowledgement.parse(text), sendings: Sending.parse(text),
                       killedAfter: killedAfter, markerSeen: markerSeen, terminationSignal: signal)
    }
}

extension Duration {
    var nanosecondsApprox: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
