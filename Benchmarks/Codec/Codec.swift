// The codecs on their own, without a store: CRC32C, journal records and
// stream-file blocks, through Ringstore's `@_spi(Benchmarks)` entry points.
//
// One iteration is one call over one buffer; `.throughput` is calls per
// second and `megabytesPerSecond` the bytes handled (buffer or payload size)
// per second. Journal and block benchmarks use 100 events of 200-byte JSON.

import Benchmark
import BenchmarkSupport
import Foundation
@_spi(Benchmarks) import Ringstore

let megabytesPerSecond = BenchmarkMetric.custom("megabytesPerSecond", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(metrics: [.wallClock, .throughput, megabytesPerSecond],
                                                maxDuration: .seconds(2), maxIterations: 1_000_000)

    for (name, size) in [("CRC32C_4KiB", 4 << 10), ("CRC32C_1MiB", 1 << 20)] {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        Benchmark(name, configuration: configuration) { benchmark in
            try timed(benchmark, bytes: size) {
                blackHole(bytes.withUnsafeBytes { Codecs.crc32c($0) })
            }
        }
    }

    // Payloads that differ as real events do: identical ones made LZ4 look several times faster.
    let events = (0..<100).map { EventData(type: "Reading", data: eventPayload(sequence: $0)) }
    let payloadBytes = events.count * eventSize
    var journal: [UInt8] = []
    let journalLength = Codecs.encodeJournalRecords(events, stream: "stream-42", into: &journal)
    let recorded = (try? Codecs.decodeJournalRecords(journal, length: journalLength)) ?? []

    Benchmark("JournalRecord_encode_100events", configuration: configuration) { benchmark in
        var buffer = [UInt8](repeating: 0, count: journalLength)
        try timed(benchmark, bytes: payloadBytes) {
            blackHole(Codecs.encodeJournalRecords(events, stream: "stream-42", into: &buffer))
        }
    }
    Benchmark("JournalRecord_decode_100events", configuration: configuration) { benchmark in
        try timed(benchmark, bytes: payloadBytes) {
            blackHole(try Codecs.decodeJournalRecords(journal, length: journalLength).count)
        }
    }
    for compress in [true, false] {
        let suffix = compress ? "lz4" : "raw"
        var block: [UInt8] = []
        Codecs.encodeStreamBlock(recorded, compress: compress, into: &block)
        Benchmark("StreamBlock_encode_\(suffix)_100events", configuration: configuration) { benchmark in
            var output: [UInt8] = []
            output.reserveCapacity(block.count * 2)
            try timed(benchmark, bytes: payloadBytes) {
                output.removeAll(keepingCapacity: true)
                Codecs.encodeStreamBlock(recorded, compress: compress, into: &output)
                blackHole(output.count)
            }
        }
        Benchmark("StreamBlock_decode_\(suffix)_100events", configuration: configuration) { benchmark in
            try timed(benchmark, bytes: payloadBytes) {
                blackHole(try Codecs.decodeStreamBlock(block, stream: "stream-42").count)
            }
        }
    }
}

/// Runs `body` for every scaled iteration and records the bytes it handled per second.
func timed(_ benchmark: Benchmark, bytes: Int, _ body: () throws -> Void) throws {
    let clock = ContinuousClock()
    let start = clock.now
    for _ in benchmark.scaledIterations { try body() }
    let elapsed = start.duration(to: clock.now)
    benchmark.measurement(megabytesPerSecond, Int(Double(bytes * benchmark.scaledIterations.count) / 1_000_000 / elapsed.seconds))
}
