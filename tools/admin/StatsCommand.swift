import ArgumentParser
import Ringstore

/// `ringstore-admin stats DIR`: sizes, counts, cursors, largest streams, blocks per stream, compression.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print sizes, counts, cursors, the largest streams, blocks per stream and the compression ratio.")

    @Argument(help: "The store's folder.") var directory: String
    @Option(help: "How many of the largest streams to list.") var top = 10

    func run() async throws {
        let session = try openSession(directory)
        defer { session.close() }
        let bar = ProgressBar()
        let report = session.verify { bar.update("reading", $0, $1) }
        bar.finish()
        let s = report.inventory
        print("journal:        \(mebibytes(s.journalBytes)) (ring \(mebibytes(s.capacity))), \(s.closedCleanly ? "closed cleanly" : "NOT closed cleanly (opening recovers it)")")
        print("  cursors:      checkpoint \(s.checkpoint), end \(s.journalEnd), session \(s.epoch), header sequence \(s.headerSequence)")
        print("  records:      \(grouped(s.journalRecordsAfterCheckpoint)) after the checkpoint, \(grouped(s.journalHistoryRecords)) of the last lap before it")
        print("stream files:   \(grouped(s.streamFiles)) files, \(mebibytes(s.streamFileBytes)); \(grouped(s.indexFiles)) index files, \(mebibytes(s.indexFileBytes))")
        if s.bucketFiles > 0 {
            print("bucket files:   \(grouped(s.bucketFiles)) files, \(mebibytes(s.bucketFileBytes)), \(grouped(s.bucketEntries)) chain entries with \(grouped(s.bucketEvents)) events; \(mebibytes(s.bucketGarbageBytes)) garbage in \(grouped(s.bucketGarbageEntries)) entries (compaction drops it); heads snapshot \(mebibytes(s.bucketSnapshotBytes))")
        }
        print("split segments: \(grouped(s.segments)) files, \(mebibytes(s.segmentBytes)), \(grouped(s.segmentEntries)) entries; \(grouped(s.segmentSummaries)) summaries, \(mebibytes(s.segmentSummaryBytes))")
        print("catalog:        \(grouped(s.catalogNames)) streams, \(mebibytes(s.catalogBytes))")
        print("global index:   \(grouped(s.globalIndexEntries)) entries, \(mebibytes(s.globalIndexBytes))")
        print("events:         \(grouped(s.events)) in \(grouped(s.streams.count)) streams")
        let ratio = s.storedBytes > 0 ? Double(s.rawBytes) / Double(s.storedBytes) : 0
        print("blocks:         \(grouped(s.blocks)) in stream files, \(s.bucketFiles > 0 ? "\(grouped(s.bucketEntries)) in bucket chains, " : "")\(grouped(s.segmentEntries)) in segments; compression \(twoPlaces(ratio)) (raw / stored)")
        if s.fileEvents > 0 && s.events > s.fileEvents {
            let files = s.fileStoredBytes > 0 ? Double(s.fileRawBytes) / Double(s.fileStoredBytes) : 0
            let segments = Double(s.rawBytes - s.fileRawBytes) / Double(max(1, s.storedBytes - s.fileStoredBytes))
            print("  by kind:      stream files \(grouped(s.fileEvents)) events, \(twoPlaces(files)); segments \(grouped(s.events - s.fileEvents)) events, \(twoPlaces(segments))")
        }
        let perStream = s.streams.map(\.blocks).sorted()
        if !perStream.isEmpty {
            let mean = Double(perStream.reduce(0, +)) / Double(perStream.count)
            print("blocks/stream:  (file blocks + bucket and segment entries) mean \(Int(mean * 10) / 10).\(Int(mean * 10) % 10), median \(perStream[perStream.count / 2]), p99 \(perStream[min(perStream.count - 1, perStream.count * 99 / 100)]), max \(perStream.last!)")
        }
        print("total:          \(mebibytes(s.totalBytes))")
        if top > 0 && !s.streams.isEmpty {
            print("largest streams:")
            for stream in s.streams.sorted(by: { $0.bytes > $1.bytes }).prefix(top) {
                print("  \(mebibytes(stream.bytes).padding(12)) \(grouped(stream.events).padding(12)) events \(grouped(stream.blocks).padding(8)) blocks  \(stream.name)")
            }
        }
        if !report.isClean { printError("stats: the store has \(report.problems.count) problems; run ringstore-admin verify") }
    }
}

func format2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

/// `x` with two decimals, truncated ("2.54").
private func twoPlaces(_ x: Double) -> String { "\(Int(x * 100) / 100).\(format2(Int(x * 100) % 100))" }
