#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Serving readers that wait for a stream: its records are written at once,
/// ahead of the scan and the checkpoint.
extension Splitter {
    /// Writes at once the streams readers are waiting for: their pending records
    /// and those not scanned yet, up to the acknowledged cursor, as one entry
    /// each in the split segments (a small sequential write, not one into the
    /// stream's file).
    func serveRequests(_ pending: inout Pending) throws -> Bool {
        guard readers.hasRequests.load(ordering: .acquiring) else { return false }
        let requested = readers.takeRequests()
        let end = acknowledged
        var worked = false
        var items: [SplitStore.Item] = []
        var served: [(stream: String, number: UInt32, next: UInt64, lastUnscanned: UInt64?)] = []
        for stream in requested {
            let unscanned = pending.scanned < end ? journal.positions(of: stream, in: pending.scanned..<end) : []
            let waiting = catalog.number(of: stream).flatMap { pending.streams[$0] }
            let positions = (waiting.map { Array($0.positions) } ?? []) + unscanned
            guard let last = positions.last else {
                // Already written (into its file or the segments) but not yet published
                // by a checkpoint: tell the reader what is stored.
                let next = try split.nextVersion(of: stream)
                if next > 0 { readers.recordAhead(stream, nextVersion: next) }
                continue
            }
            try makeJournalDurable(through: last)
            let number = waiting?.number ?? catalog.register(stream)
            let blocks = try buildBlocks(positions, of: stream, from: try split.splitNext(of: stream, number: number))
            let next = try blocks.last.map { $0.firstVersion + UInt64($0.count) } ?? split.nextVersion(of: stream)
            if !blocks.isEmpty { items.append(.init(number: number, blocks: blocks)) }
            served.append((stream, number, next, unscanned.last))
        }
        guard !served.isEmpty else { return false }
        try catalog.write()  // a stream seen first here: its number is named before the checkpoint syncs both
        try checkSegmentRoom()
        try split.appendToSegments(items)
        for (stream, number, next, lastUnscanned) in served {
            pending.streams.remove(number)
            pending.touched.insert(number: number, name: stream)
            if let last = lastUnscanned { pending.servedBeyondScan[stream] = max(last, pending.servedBeyondScan[stream] ?? 0) }
            readers.recordAhead(stream, nextVersion: next)
            worked = true
        }
        return worked
    }
}
