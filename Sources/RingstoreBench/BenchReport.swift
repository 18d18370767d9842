import Foundation

/// The measurements of one system's run. Encoded as one element of the report's `results`.
///
/// Ringstore and the SQLite peer fill every measurement; the minimal SQLite
/// program (``SQLiteMinimal``) measures only time, so its latency, reader,
/// flush and bytes-written fields are nil (absent from the JSON).
public struct SystemResult: Sendable, Codable, Hashable {
    /// Append latency percentiles, in milliseconds.
    public struct Latency: Sendable, Codable, Hashable {
        public var p50: Double
        public var p99: Double
        public var p999: Double
        /// The longest append: the longest stall any writer saw.
        public var max: Double? = nil
    }

    public var system: String
    /// Events appended (all acknowledged).
    public var events: Int
    public var appends: Int
    /// Wall-clock seconds of the ingest, from the first append to the last acknowledgement.
    public var seconds: Double
    public var eventsPerSecond: Double
    /// Payload megabytes (10^6 bytes) appended per second.
    public var megabytesPerSecond: Double
    public var latencyMs: Latency?
    /// 99th percentile of the reader probe: how long a read of the stream just appended to took to see the append.
    public var readerWaitMsP99: Double?
    /// How many reader probes ran.
    public var readerProbes: Int?
    public var flushes: UInt64?
    public var flushesPerSecond: Double?
    /// Events × event size.
    public var payloadBytes: UInt64
    /// Bytes the system wrote into its files, as it counts them (see the README).
    public var bytesWritten: UInt64?
    public var bytesWrittenPerPayloadByte: Double?
    /// `/proc/self/io` `write_bytes` growth over the ingest and settle (nil where unavailable).
    public var storageWriteBytes: UInt64?
    public var storageWriteBytesPerPayloadByte: Double?
    /// Peak resident set size during this system's run.
    public var peakRSSBytes: UInt64
    /// Processor time the process used per event appended, from the start of the
    /// measured run until the system had settled (for Ringstore, until the split
    /// of those events was done), in microseconds (``ProcessorTime``).
    public var processorMicrosPerEvent: ProcessorTime? = nil
    /// Appends that found the journal full and waited (Ringstore only; 0 means the ring never filled).
    public var journalFullWaits: UInt64?
    /// Read-back rates (with `--read`).
    public var read: ReadResult?
    /// Live subscribers (with `--subscribers`, Ringstore only).
    public var subscription: SubscriptionResult?
    /// The longest checkpoint since the store opened (Ringstore only), in milliseconds.
    public var longestCheckpointMs: Double? = nil
    /// With `--rate`: 99th percentile of how late writers woke up for their due appends,
    /// whatever the system: the load generator's own floor under the append latency,
    /// which counts from the due time.
    public var wakeLatenessMsP99: Double? = nil
    /// With `--rate`: the appends whose writer was still in its previous append
    /// at their due time, so started them late without waiting (``Lateness``).
    public var behindSchedule: Lateness? = nil
    /// With `--rate`: 99th percentile of how late the other appends' writers
    /// woke from their wait for the due time (the load generator's timer and
    /// the processors' hand-over, without any catching up).
    public var wokenLateMsP99: Double? = nil
    /// With `--rate`: how long the append calls took from the call to its return,
    /// leaving out any lateness: a stall of the system shows here, a late
    /// writer only in the latency from the due time.
    public var appendCallMs: Latency? = nil
    /// How long the journal's syncs (`fdatasync`) took during the run and its settle
    /// (Ringstore, run by `ringstore bench`): the disk's part of the append latency.
    public var journalSyncMs: Latency? = nil
    /// What the slow appends (a call of at least `--slow-append-ms`) ran alongside
    /// (Ringstore, run by `ringstore bench`).
    public var stalls: StallReport? = nil
}

/// With `--rate`, the appends that started behind their schedule: each writer
/// appends on a fixed schedule, and one whose previous append returned after
/// the next one was due starts that one at once, late by the difference. A
/// stall of the system makes every writer fall behind for several appends
/// while it catches up, which is how a stall of a few milliseconds reaches
/// the latency percentiles counted from the due time.
public struct Lateness: Sendable, Codable, Hashable {
    /// Appends started behind schedule.
    public var appends: Int
    /// Their share of all appends (0-1).
    public var share: Double
    /// How late they started, in milliseconds.
    public var p50Ms: Double
    public var p99Ms: Double
}

/// Processor time per event, in microseconds, as `getrusage` counts it for the
/// whole process: the system's own threads, and also the bench's writers,
/// reader probe and progress display, which a real client would have too.
/// System time includes what the kernel spends on the process's writes, syncs
/// and thread switches; on a virtual machine, also the traps to the hypervisor
/// that submitting I/O costs.
public struct ProcessorTime: Sendable, Codable, Hashable {
    public var user: Double
    public var system: Double
    public var total: Double { user + system }
}

/// Read-back after the ingest: every stream from its start, then `$all`.
public struct ReadResult: Sendable, Codable, Hashable {
    public var streams: Int
    public var streamEvents: Int
    public var streamEventsPerSecond: Double
    public var allEvents: Int
    public var allEventsPerSecond: Double
}

/// The whole bench: the workload, one result per system, and Ringstore's events/s over the peer's.
public struct BenchReport: Sendable, Codable {
    /// The knobs as run. `events` and `durationSeconds` are the bounds asked for;
    /// `compareEvents` is the peer's event bound.
    public struct WorkloadSummary: Sendable, Codable, Hashable {
        public var streams: Int
        public var events: Int?
        public var eventSize: Int
        /// What the payloads look like (``Workload/Payload``).
        public var payload: String
        public var writers: Int
        public var batch: Int
        public var durability: String
        public var durationSeconds: Double?
        public var read: Bool
        public var subscribers: Int
        /// Offered events per second (nil: as fast as possible).
        public var rate: Double?
        /// Whether every stream got one unmeasured event first.
        public var warmUp: Bool
        public var compare: String?
        public var compareEvents: Int?
        /// Whether the minimal SQLite program ran after the peer (`--peer-check`).
        public var peerCheck: Bool
    }

    public var workload: WorkloadSummary
    public var results: [SystemResult]

    public init(workload: Workload, compare: String?, compareEvents: Int?, peerCheck: Bool = false, results: [SystemResult]) {
        self.workload = WorkloadSummary(
            streams: workload.streams, events: workload.events, eventSize: workload.eventSize,
            payload: workload.payload.rawValue, writers: workload.writers,
            batch: workload.batch, durability: workload.durability.rawValue, durationSeconds: workload.duration,
            read: workload.read, subscribers: workload.subscribers, rate: workload.rate, warmUp: workload.warmUp, compare: compare,
            compareEvents: compare == nil ? nil : compareEvents, peerCheck: peerCheck)
        self.results = results
    }

    /// Ringstore's events/s over the peer's (the one `--compare` names); nil without a peer.
    public var ratio: Double? {
        guard let ours = results.first(where: { $0.system == "ringstore" }),
              let peer = results.first(where: { $0.system == workload.compare }), peer.eventsPerSecond > 0 else { return nil }
        return ours.eventsPerSecond / peer.eventsPerSecond
    }

    /// The SQLite peer's events/s over the minimal SQLite program's (`--peer-check`);
    /// near 1 when the peer costs SQLite nothing beyond what SQLite itself costs.
    public var peerRatio: Double? {
        guard let peer = results.first(where: { $0.system == workload.compare }),
              let minimal = results.first(where: { $0.system == SQLiteMinimal.name }), minimal.eventsPerSecond > 0 else { return nil }
        return peer.eventsPerSecond / minimal.eventsPerSecond
    }

    private enum CodingKeys: String, CodingKey { case workload, results, ratio, peerRatio }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        workload = try container.decode(WorkloadSummary.self, forKey: .workload)
        results = try container.decode([SystemResult].self, forKey: .results)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(workload, forKey: .workload)
        try container.encode(results, forKey: .results)
        // Always present, null without a peer, so that machines find the key.
        if let ratio { try container.encode(ratio, forKey: .ratio) } else { try container.encodeNil(forKey: .ratio) }
        try container.encodeIfPresent(peerRatio, forKey: .peerRatio)
    }

    /// One line of JSON.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// A table for people: one row per measurement, one column per system.
    public func table() -> String {
        func row(_ label: String, _ value: (SystemResult) -> String) -> [String] { [label] + results.map(value) }
        var rows: [[String]] = [[""] + results.map(\.system)]
        rows.append(row("events") { Self.grouped($0.events) })
        rows.append(row("appends") { Self.grouped($0.appends) })
        rows.append(row("elapsed") { Self.fixed($0.seconds, 2) + " s" })
        rows.append(row("events/s") { Self.grouped(Int($0.eventsPerSecond.rounded())) })
        rows.append(row("MB/s (payload)") { Self.fixed($0.megabytesPerSecond, 1) })
        rows.append(row("append p50") { $0.latencyMs.map { Self.fixed($0.p50, 3) + " ms" } ?? "n/a" })
        rows.append(row("append p99") { $0.latencyMs.map { Self.fixed($0.p99, 3) + " ms" } ?? "n/a" })
        rows.append(row("append p99.9") { $0.latencyMs.map { Self.fixed($0.p999, 3) + " ms" } ?? "n/a" })
        rows.append(row("longest append") { $0.latencyMs?.max.map { Self.fixed($0, 1) + " ms" } ?? "n/a" })
        if results.contains(where: { $0.wakeLatenessMsP99 != nil }) {
            rows.append(row("wake-up lateness p99") { $0.wakeLatenessMsP99.map { Self.fixed($0, 3) + " ms" } ?? "n/a" })
            rows.append(row("  woken from the wait p99") { $0.wokenLateMsP99.map { Self.fixed($0, 3) + " ms" } ?? "n/a" })
            rows.append(row("  behind schedule p50/p99") { result in
                result.behindSchedule.map {
                    "\(Self.grouped($0.appends)) (\(Self.share($0.appends, of: result.appends))): "
                        + Self.fixed($0.p50Ms, 3) + " / " + Self.fixed($0.p99Ms, 3) + " ms"
                } ?? "n/a"
            })
        }
        if results.contains(where: { $0.appendCallMs != nil }) {
            rows.append(row("append call p50/p99/max") {
                $0.appendCallMs.map { [$0.p50, $0.p99, $0.max ?? 0].map { Self.fixed($0, 3) }.joined(separator: " / ") + " ms" } ?? "n/a"
            })
        }
        rows.append(row("reader wait p99") { $0.readerWaitMsP99.map { Self.fixed($0, 3) + " ms" } ?? "n/a" })
        if results.contains(where: { $0.journalSyncMs != nil }) {
            rows.append(row("journal sync p50/p99/max") {
                $0.journalSyncMs.map { [$0.p50, $0.p99, $0.max ?? 0].map { Self.fixed($0, 3) }.joined(separator: " / ") + " ms" } ?? "n/a"
            })
        }
        if let most = results.compactMap({ $0.stalls?.overlaps.count }).max() {
            // The kinds the most slow appends overlapped, in the order of the first system that has them.
            let threshold = results.compactMap { $0.stalls?.thresholdMs }.first ?? 1
            rows.append(row("appends ≥ \(Self.trimmed(threshold)) ms") { result in
                result.stalls.map { stalls in
                    Self.grouped(stalls.slowAppends) + " (" + Self.share(stalls.slowAppends, of: result.appends) + ")"
                        + (stalls.classified < stalls.slowAppends ? ", \(Self.grouped(stalls.classified)) lined up" : "")
                } ?? "n/a"
            })
            let kinds = results.first { $0.stalls != nil }?.stalls?.overlaps.map(\.what) ?? []
            for kind in kinds.prefix(min(most, Self.stallRows)) {
                rows.append(row("  alongside \(kind)") { result in
                    guard let stalls = result.stalls, let overlap = stalls.overlaps.first(where: { $0.what == kind }) else { return "n/a" }
                    return Self.share(overlap.appends, of: stalls.classified) + " (\(Self.grouped(overlap.spans)) spans)"
                })
            }
            rows.append(row("  alongside nothing recorded") { result in
                result.stalls.map { Self.share($0.overlappingNothing, of: $0.classified) } ?? "n/a"
            })
        }
        rows.append(row("flushes/s") { $0.flushesPerSecond.map { Self.grouped(Int($0.rounded())) } ?? "n/a" })
        rows.append(row("bytes written / payload byte") { $0.bytesWrittenPerPayloadByte.map { Self.fixed($0, 2) } ?? "n/a" })
        rows.append(row("disk writes / payload byte") { $0.storageWriteBytesPerPayloadByte.map { Self.fixed($0, 2) } ?? "n/a" })
        rows.append(row("processor time / event") {
            $0.processorMicrosPerEvent.map { Self.fixed($0.total, 2) + " µs (user " + Self.fixed($0.user, 2) + ", system " + Self.fixed($0.system, 2) + ")" } ?? "n/a"
        })
        rows.append(row("peak RSS") { Self.fixed(Double($0.peakRSSBytes) / 1_048_576, 1) + " MiB" })
        rows.append(row("journal-full waits") { $0.journalFullWaits.map { Self.grouped(Int($0)) } ?? "n/a" })
        rows.append(row("longest checkpoint") { $0.longestCheckpointMs.map { Self.fixed($0, 0) + " ms" } ?? "n/a" })
        if results.contains(where: { $0.read != nil }) {
            rows.append(row("stream reads") { $0.read.map { Self.grouped(Int($0.streamEventsPerSecond.rounded())) + " events/s" } ?? "" })
            rows.append(row("$all reads") { $0.read.map { Self.grouped(Int($0.allEventsPerSecond.rounded())) + " events/s" } ?? "" })
        }
        if results.contains(where: { $0.subscription != nil }) {
            rows.append(row("subscription delivery") {
                $0.subscription.map { Self.grouped(Int($0.eventsPerSecondPerSubscriber.rounded())) + " events/s each (\($0.subscribers))" } ?? "n/a"
            })
            rows.append(row("ack → delivery p50/p99") {
                $0.subscription.map { Self.fixed($0.liveLatencyMs.p50, 3) + " / " + Self.fixed($0.liveLatencyMs.p99, 3) + " ms" } ?? "n/a"
            })
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { cells in
            cells.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "   ")
        }
        if let ratio, let peer = workload.compare {
            lines.append("ratio (ringstore events/s over \(peer)'s): \(Self.fixed(ratio, 1))×")
        }
        if let peerRatio, let peer = workload.compare {
            lines.append("peer check (\(peer) events/s over \(SQLiteMinimal.name)'s): \(Self.fixed(peerRatio, 2))×")
        }
        return lines.joined(separator: "\n")
    }

    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    /// `value` without a trailing ".0" (1 → "1", 2.5 → "2.5").
    static func trimmed(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// Kinds of span the table lists for the slow appends (the JSON has them all).
    static let stallRows = 5

    /// `part` of `whole` as a percentage ("0 %" of nothing): two decimals under
    /// 1 %, one under 10 %, none above, so a small share never rounds to a whole one.
    static func share(_ part: Int, of whole: Int) -> String {
        guard whole > 0 else { return "0 %" }
        let percent = 100 * Double(part) / Double(whole)
        return fixed(percent, percent < 1 ? 2 : percent < 10 ? 1 : 0) + " %"
    }

    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }
}
