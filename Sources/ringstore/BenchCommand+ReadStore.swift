import ArgumentParser
import Foundation
import Ringstore
import RingstoreBench

/// `ringstore bench --read-store DIR`: warm read rates of an existing store,
/// without appending. Each pass reads `$all` from start to end, then every
/// stream from start to end; the first pass warms the page cache (and the
/// store's caches), so the median over the passes is the warm rate. Runs on the
/// same store compare read paths without the noise of a new ingest each time,
/// and a store kept by `ringstore bench --dir` is the usual input. Processor
/// time is printed beside the wall clock; the store's background threads are
/// idle meanwhile, so it is the readers' own.
extension BenchCommand {
    /// Processor time (user + system) this process has used, in seconds.
    private func processorSeconds() -> Double {
        let used = ProcessMeter.processorSeconds
        return used.user + used.system
    }

    func runReadStore(_ path: String) async throws {
        let root = FileManager.default.fileExists(atPath: path + "/ringstore") ? path + "/ringstore" : path
        try await reportingErrors {
            let configuration = try Configuration.fromEnvironment(base: Configuration())
            let system = try await RingstoreSystem.open(at: root, configuration: configuration, logger: .commandLine)
            do {
                let names = try system.store.streamNames()
                var allRates: [Double] = []
                var streamRates: [Double] = []
                var allCPURates: [Double] = []
                var streamCPURates: [Double] = []
                for pass in 1...max(1, passes) {
                    let clock = ContinuousClock()
                    let allStarted = (clock.now, processorSeconds())
                    let all = reads == .streamsOnly ? 0 : try await system.readAll()
                    let allSeconds = allStarted.0.duration(to: clock.now).seconds
                    let allCPU = processorSeconds() - allStarted.1
                    let streamsStarted = (clock.now, processorSeconds())
                    var streamEvents = 0
                    for name in names where reads != .allOnly { streamEvents += try await system.readStream(name) }
                    let streamSeconds = streamsStarted.0.duration(to: clock.now).seconds
                    let streamCPU = processorSeconds() - streamsStarted.1
                    allRates.append(Double(all) / max(allSeconds, 1e-9))
                    streamRates.append(Double(streamEvents) / max(streamSeconds, 1e-9))
                    allCPURates.append(Double(all) / max(allCPU, 1e-9))
                    streamCPURates.append(Double(streamEvents) / max(streamCPU, 1e-9))
                    print("pass \(pass): $all \(grouped(all)) events in \(String(format: "%.3f", allSeconds)) s (\(String(format: "%.3f", allCPU)) s of processor), \(grouped(Int(allRates.last!))) events/s; "
                        + "\(grouped(names.count)) streams, \(grouped(streamEvents)) events in \(String(format: "%.3f", streamSeconds)) s (\(String(format: "%.3f", streamCPU)) s of processor), \(grouped(Int(streamRates.last!))) events/s")
                }
                func median(_ values: [Double]) -> Int { Int(values.sorted()[values.count / 2]) }
                print("median: $all \(grouped(median(allRates))) events/s (\(grouped(median(allCPURates))) per processor-second), "
                    + "streams \(grouped(median(streamRates))) events/s (\(grouped(median(streamCPURates))) per processor-second); "
                    + "peak RSS \(String(format: "%.1f", Double(ProcessMeter.peakResidentBytes) / 1_048_576)) MiB")
            } catch {
                try? await system.close()
                throw error
            }
            try await system.close()
        }
    }
}
