import ArgumentParser
import Foundation
import Ringstore
import RingstoreBench

/// `ringstore bench --read-store DIR`: warm read rates of an existing store,
/// without appending. Each pass reads `$all` from start to end, then every
/// stream from start to end; the first pass warms the page cache (and the
/// store's caches), so the median over the passes is the warm rate. Runs on the
/// same store compare read paths without the noise of a new ingest each time,
/// and a store kept by `ringstore bench --dir` is the usual input.
extension BenchCommand {
    func runReadStore(_ path: String) async throws {
        let root = FileManager.default.fileExists(atPath: path + "/ringstore") ? path + "/ringstore" : path
        try await reportingErrors {
            let configuration = try Configuration.fromEnvironment(base: Configuration())
            let system = try await RingstoreSystem.open(at: root, configuration: configuration, logger: .commandLine)
            do {
                let names = try system.store.streamNames()
                var allRates: [Double] = []
                var streamRates: [Double] = []
                for pass in 1...max(1, passes) {
                    let clock = ContinuousClock()
                    let allStarted = clock.now
                    let all = try await system.readAll()
                    let allSeconds = allStarted.duration(to: clock.now).seconds
                    let streamsStarted = clock.now
                    var streamEvents = 0
                    for name in names { streamEvents += try await system.readStream(name) }
                    let streamSeconds = streamsStarted.duration(to: clock.now).seconds
                    allRates.append(Double(all) / max(allSeconds, 1e-9))
                    streamRates.append(Double(streamEvents) / max(streamSeconds, 1e-9))
                    print("pass \(pass): $all \(grouped(all)) events in \(String(format: "%.3f", allSeconds)) s, \(grouped(Int(allRates.last!))) events/s; "
                        + "\(grouped(names.count)) streams, \(grouped(streamEvents)) events in \(String(format: "%.3f", streamSeconds)) s, \(grouped(Int(streamRates.last!))) events/s")
                }
                func median(_ values: [Double]) -> Int { Int(values.sorted()[values.count / 2]) }
                print("median: $all \(grouped(median(allRates))) events/s, streams \(grouped(median(streamRates))) events/s; "
                    + "peak RSS \(String(format: "%.1f", Double(ProcessMeter.peakResidentBytes) / 1_048_576)) MiB")
            } catch {
                try? await system.close()
                throw error
            }
            try await system.close()
        }
    }
}
