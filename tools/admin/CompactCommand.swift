import ArgumentParser
import Ringstore

/// `ringstore-admin compact DIR [--dry-run] [--skip-damaged]`.
struct CompactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Rewrite a closed store without what reads no longer show, in full-size blocks (crash-safe).",
        discussion: "Removes events hidden by maxCount, maxAge and truncateBefore, deleted streams and superseded snapshots; moves split segments and bucket chains into stream files (small streams into new bucket files when RINGSTORE_STREAM_BUCKETS is on), dropping the chains of streams that left their bucket; rebuilds the global index. Versions, IDs, data and positions of the events that stay do not change. Refuses a store that does not verify clean unless --skip-damaged (then damaged stream files are kept as they are).")

    @Argument(help: "The store's folder.") var directory: String
    @Flag(help: "Report what would be reclaimed; change nothing.") var dryRun = false
    @Flag(help: "Keep damaged stream files unchanged and compact the rest (other damage is always refused).") var skipDamaged = false
    @Option(help: "MiB of split-segment entries held at once (memory): streams are rewritten in ranges whose entries fit, gathered by one pass over the segments into temporary files.") var memoryMb: UInt64 = 64
    @Option(help: "LZ4 acceleration of the rewritten blocks: 1 compresses best (the engine's own setting), higher is faster and compresses less (4: about 4 % larger, 11 % less CPU on a store of one-event appends).") var lz4Acceleration: Int32 = 4
    @Option(help: "Threads that rewrite streams at once (default: one per processor, at most 4).") var threads: Int = CompactOptions.defaultThreads

    func validate() throws {
        guard memoryMb >= 1, memoryMb <= 1 << 20 else { throw ValidationError("--memory-mb must be from 1 to 1048576") }
        guard lz4Acceleration >= 1, lz4Acceleration <= 65_537 else { throw ValidationError("--lz4-acceleration must be from 1 to 65537") }
        guard threads >= 1, threads <= 64 else { throw ValidationError("--threads must be from 1 to 64") }
    }

    func run() async throws {
        let session = try openSession(directory)
        defer { session.close() }
        let bar = ProgressBar()
        let summary: CompactSummary
        do {
            summary = try await session.compact(options: CompactOptions(dryRun: dryRun, skipDamaged: skipDamaged, memoryBudget: memoryMb << 20, acceleration: lz4Acceleration, threads: threads)) { bar.update($0, $1, $2) }
        } catch {
            bar.finish()
            printError("ringstore-admin: \(describe(error))")
            throw ExitCode(1)
        }
        bar.finish()
        let rate = summary.inputBytesPerSecond / 1_048_576
        let verb = summary.dryRun ? "would be" : "are"
        print("compact\(summary.dryRun ? " (dry run: nothing changed)" : ""):")
        print("  store files:      \(mebibytes(summary.totalBytesBefore)) -> \(mebibytes(summary.totalBytesAfter)) (\(mebibytes(summary.totalBytesBefore &- min(summary.totalBytesBefore, summary.totalBytesAfter))) reclaimed)")
        print("  rewritten files:  \(mebibytes(summary.rewritableBytesBefore)) -> \(mebibytes(summary.rewritableBytesAfter)) (streams, indexes, buckets, segments, global index)")
        print("  streams:          \(grouped(summary.streamsBefore)) -> \(grouped(summary.streamsAfter)) (\(grouped(summary.streamsRemoved)) \(verb) removed\(summary.streamsBucketed > 0 ? "; \(grouped(summary.streamsBucketed)) small ones in bucket files" : ""))")
        print("  events:           \(grouped(summary.eventsBefore)) -> \(grouped(summary.eventsAfter)) (\(grouped(summary.eventsRemoved)) \(verb) removed)")
        print("  blocks:           \(grouped(summary.blocksBefore)) -> \(grouped(summary.blocksAfter)) (bucket and split segment entries counted as blocks; \(summary.segmentsBefore) segments emptied in \(summary.segmentPasses) \(summary.segmentPasses == 1 ? "pass" : "passes"), \(summary.streamRanges) \(summary.streamRanges == 1 ? "range" : "ranges") of streams; \(grouped(summary.blocksReused)) full-size blocks copied as they were)")
        if !summary.skipped.isEmpty { print("  left as they were (damaged): \(summary.skipped.joined(separator: ", "))") }
        print("  time:             \(format3(summary.seconds)) s on \(summary.threads) \(summary.threads == 1 ? "thread" : "threads"), \(Int(rate)) MiB/s of input (the store's \(mebibytes(summary.totalBytesBefore)); \(mebibytes(summary.bytesRead)) read: verify with the routing beside it, then the rewrite)")
        print("  phases:           " + summary.phases.map { "\($0.name) \(format3($0.seconds)) s" }.joined(separator: ", "))
    }
}
