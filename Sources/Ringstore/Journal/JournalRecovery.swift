#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Rebuilds the journal's in-memory state after an open, clean or not.
///
/// Scans forward from the checkpoint, validating every record (length,
/// position, checksum, structure, non-decreasing epoch no more than one past
/// the header's, contiguous versions below ``StreamState/versionLimit``), and
/// stops at the first record that fails. Events count only when their whole
/// append is present (its last record carries the end-of-append flag), so an
/// append torn by a crash disappears entirely. The journal's end is the end of
/// the last whole append; the writer continues from there, and because every
/// session writes a higher epoch, bytes left beyond that end by the crashed
/// session can never be mistaken for records of a later one.
struct JournalRecovery {
    /// What recovery found. The index is handed to the writer, which owns it
    /// from then on; only the ``Summary`` is kept (a second owner of the index
    /// would make the writer's first append copy it whole, and keep both).
    struct Outcome {
        var index: JournalIndex
        /// End of the last whole append: where the writer continues.
        var end: UInt64
        /// Epoch of the last record seen (0 if none).
        var lastEpoch: UInt32
        var summary: Summary
        /// The last appends recovered (as many as asked for), oldest first: they
        /// refill the idempotency window. The first may be the second part of an
        /// append that the checkpoint fell inside (see ``JournalHistory``).
        var recentAppends: [RecentAppend] = []
    }

    /// What recovery found, for stats and logs.
    struct Summary: Sendable {
        /// Why the scan stopped (for logs and `verify`).
        var stopReason: String
        /// Events recovered.
        var eventCount: Int
    }

    /// Scans `ring` from `checkpoint`. `headerEpoch` is the session number in
    /// the header: no record can be more than one session newer (the newest
    /// header slot, if damaged, falls back to the slot before, written at most
    /// one session earlier). `baseVersions` gives, for streams whose earlier
    /// events have left the ring, the version their next event must have; the
    /// last `keepingAppends` appends are listed in the outcome.
    static func scan(_ ring: RingFile, checkpoint: UInt64, headerEpoch: UInt32,
                     baseVersions: [String: UInt64] = [:], keepingAppends: Int = 0) -> Outcome {
        // Records from later sessions than this cannot be the journal's.
        let epochLimit = headerEpoch == .max ? headerEpoch : headerEpoch + 1
        var index = JournalIndex()
        var recent = RecentAppends(capacity: keepingAppends)
        var position = checkpoint
        var end = checkpoint
        var lastEpoch: UInt32 = 0
        var eventCount = 0
        var stopReason = "reached the end of a full ring lap"

        // The append being read: all its records share one stream and run in version order.
        var groupStream: String?
        var groupFirstVersion: UInt64 = 0
        var groupPositions: [UInt64] = []
        var groupIDs: [UUID] = []

        scanning: while position < checkpoint + ring.capacity {
            let toEnd = ring.bytesToEnd(from: position)
            if toEnd < UInt64(JournalRecord.paddingSize) {
                position += toEnd  // a tail too short for a padding record is skipped implicitly
                continue
            }
            let physical = ring.physical(position)
            let inspection = ring.withMappedBytes(physical: physical, count: Int(toEnd)) {
                JournalRecord.inspect($0, expectedPosition: position)
            }
            switch inspection {
            case .invalid(let reason):
                stopReason = "position \(position): \(reason)"
                break scanning
            case .padding(let length, let epoch):
                guard epoch <= epochLimit else {
                    stopReason = "position \(position): padding from session \(epoch), but the header is at session \(headerEpoch)"
                    break scanning
                }
                guard epoch >= lastEpoch else {
                    stopReason = "position \(position): padding from session \(epoch) after session \(lastEpoch) (left over from before a truncation)"
                    break scanning
                }
                guard groupStream == nil else {
                    stopReason = "position \(position): padding inside an append"
                    break scanning
                }
                lastEpoch = epoch
                position += UInt64(length)
            case .event(let header):
                guard header.epoch <= epochLimit else {
                    stopReason = "position \(position): record from session \(header.epoch), but the header is at session \(headerEpoch)"
                    break scanning
                }
                guard header.version < StreamState.versionLimit else {
                    stopReason = "position \(position): version \(header.version) leaves no room for a next one (the limit is \(StreamState.versionLimit - 1))"
                    break scanning
                }
                guard header.epoch >= lastEpoch else {
                    stopReason = "position \(position): record from session \(header.epoch) after session \(lastEpoch) (left over from before a truncation)"
                    break scanning
                }
                let stream = ring.withMappedBytes(physical: physical, count: header.length) {
                    JournalRecord.streamName($0, header)
                }
                if let current = groupStream {
                    guard current == stream, header.version == groupFirstVersion + UInt64(groupPositions.count) else {
                        stopReason = "position \(position): append interrupted by a record of another stream or version"
                        break scanning
                    }
                } else {
                    let expectedVersion = index.streams[stream]?.nextVersion ?? baseVersions[stream]
                    if let expectedVersion, expectedVersion != header.version {
                        stopReason = "position \(position): stream \"\(stream)\" jumps from version \(expectedVersion) to \(header.version)"
                        break scanning
                    }
                    groupStream = stream
                    groupFirstVersion = header.version
                }
                lastEpoch = header.epoch
                groupPositions.append(position)
                groupIDs.append(header.id)
                position += UInt64(header.length)
                if header.endOfAppend {
                    index.recordRecovered(stream: stream, firstVersion: groupFirstVersion, positions: groupPositions, ids: groupIDs)
                    recent.add(RecentAppend(firstID: groupIDs[0], stream: stream, firstVersion: groupFirstVersion,
                                            count: groupIDs.count))
                    eventCount += groupPositions.count
                    end = position
                    groupStream = nil
                    groupPositions.removeAll(keepingCapacity: true)
                    groupIDs.removeAll(keepingCapacity: true)
                }
            }
        }
        if groupStream != nil { stopReason += "; dropped an incomplete append of \(groupPositions.count) events" }
        return Outcome(index: index, end: end, lastEpoch: lastEpoch,
                       summary: Summary(stopReason: stopReason, eventCount: eventCount), recentAppends: recent.ordered)
    }
}
