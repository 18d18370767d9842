import Foundation
import Ringstore
import Synchronization

/// Runs a ``Workload`` against one ``BenchSystem`` and measures it.
///
/// `writers` tasks append concurrently, each to its own streams with exact
/// expected versions; every append's latency goes into the writer's
/// ``LatencyRecorder``. Meanwhile a reader probe, every 2 ms, reads the newest
/// event of the stream most recently appended to and records how long it took
/// to see it (for Ringstore this includes waiting for the splitter). After the
/// ingest the system settles (Ringstore finishes the split), the bytes written
/// are counted, and with `read` every stream and then `$all` are read back and
/// their counts checked against what was appended.
public struct WorkloadRunner: Sendable {
    public var workload: Workload
    /// Called about five times a second during the ingest, and once at its end.
    public var onProgress: @Sendable (BenchProgress) -> Void

    public init(workload: Workload, onProgress: @escaping @Sendable (BenchProgress) -> Void = { _ in }) {
        self.workload = workload
        self.onProgress = onProgress
    }

    public func run(_ system: some BenchSystem) async throws -> SystemResult {
        try workload.validate()
        let warmedUp = workload.warmUp ? try await warmUp(system) : StreamVersions(streams: workload.streams)
        // The warm-up's events split too (into split segments: a stream's own file comes
        // once it holds a block's worth), so that the measured run starts with them split.
        if workload.warmUp { try await system.settle() }
        let warmUpEvents = warmedUp.streamCount
        ProcessMeter.resetPeakResident()
        try system.startMeasuring()
        let countersBefore = try await system.counters()
        let storageBefore = ProcessMeter.storageWriteBytes
        let processorBefore = ProcessMeter.processorSeconds
        let shared = RunState()
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = workload.duration.map { started + .milliseconds(Int64($0 * 1000)) }
        // With a rate, the writers' schedule is kept on the monotonic clock from here.
        let schedule = workload.rate.map { _ in (pacer: SchedulePacer(), start: monotonicNanoseconds()) }
        // The reader probe waits between its reads on the pacer too (one of its own
        // without a rate): `Task.sleep` would arm a libdispatch timer 500 times a second.
        let probePacer = schedule?.pacer ?? SchedulePacer()
        defer { probePacer.stop() }

        let ticker = Task {
            while !shared.stopped.load(ordering: .relaxed) {
                onProgress(progress(system, shared, since: started, finished: false))
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        let probe = Task { () throws -> LatencyRecorder in
            try await probeReads(system, shared, pacer: probePacer)
        }
        let subscribers = workload.subscribers > 0 ? try (system as? RingstoreSystem)?.startSubscribers(workload.subscribers) : nil
        let outcomes: [WriterOutcome]
        do {
            outcomes = try await withThrowingTaskGroup(of: WriterOutcome.self) { group in
                for writer in 0..<workload.writers {
                    group.addTask {
                        try await append(system, writer: writer, shared: shared, schedule: schedule, deadline: deadline, existing: warmedUp)
                    }
                }
                var outcomes: [WriterOutcome] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
        } catch {
            shared.stopped.store(true, ordering: .relaxed)
            _ = await ticker.value
            _ = try? await probe.value
            throw error
        }
        let elapsed = started.duration(to: clock.now)
        let deliveredDuringIngest = subscribers?.0.eventsDelivered ?? 0
        shared.stopped.store(true, ordering: .relaxed)
        _ = await ticker.value
        let readerWaits = try await probe.value
        onProgress(progress(system, shared, since: started, finished: true))

        var latencies = LatencyRecorder()
        var woken = LatencyRecorder()
        var behind = LatencyRecorder()
        var calls = LatencyRecorder()
        var streamVersions = warmedUp
        for outcome in outcomes {
            latencies.merge(outcome.latencies)
            woken.merge(outcome.woken)
            behind.merge(outcome.behind)
            calls.merge(outcome.calls)
            for (k, version) in outcome.lastVersions.enumerated() {
                if let version { streamVersions[workload.ownedStreams(of: outcome.writer)[k]] = version }
            }
        }
        // Every due append was either woken from its wait or started behind schedule.
        var wakeLateness = woken
        wakeLateness.merge(behind)
        let events = outcomes.reduce(0) { $0 + $1.events }
        var subscription: SubscriptionResult?
        if let (probe, tasks) = subscribers {
            // Let the subscribers receive the last appends too (for the latency sample), then stop them.
            let patience = clock.now + .seconds(5)
            while probe.eventsDelivered < events * tasks.count, clock.now < patience { try await Task.sleep(for: .milliseconds(2)) }
            for task in tasks { task.cancel() }
            let latencies = probe.latencies
            subscription = SubscriptionResult(
                subscribers: tasks.count,
                eventsPerSecondPerSubscriber: Double(deliveredDuringIngest) / Double(tasks.count) / elapsed.seconds,
                eventsDelivered: probe.eventsDelivered,
                liveLatencyMs: .init(p50: latencies.milliseconds(atPercentile: 50), p99: latencies.milliseconds(atPercentile: 99),
                                     p999: latencies.milliseconds(atPercentile: 99.9)),
                latencySamples: Int(latencies.count))
        }
        let appends = outcomes.reduce(0) { $0 + $1.appends }
        if let requested = workload.events, workload.duration == nil, events != requested {
            throw BenchError("\(system.name): appended \(events) events, \(requested) were asked for")
        }

        try await system.settle()
        let countersAfter = try await system.counters()
        let storageAfter = ProcessMeter.storageWriteBytes
        let processorAfter = ProcessMeter.processorSeconds
        let reads = workload.read ? try await readBack(system, streamVersions: streamVersions, events: events + warmUpEvents) : nil
        let peakRSS = ProcessMeter.peakResidentBytes

        let seconds = elapsed.seconds
        let payloadBytes = UInt64(events) * UInt64(workload.eventSize)
        let bytesWritten = countersAfter.bytesWritten - countersBefore.bytesWritten
        let storageWrites = storageBefore.flatMap { before in storageAfter.map { $0 >= before ? $0 - before : 0 } }
        let flushes = countersAfter.flushes - countersBefore.flushes
        return SystemResult(
            system: system.name, events: events, appends: appends, seconds: seconds,
            eventsPerSecond: Double(events) / seconds,
            megabytesPerSecond: Double(payloadBytes) / 1_000_000 / seconds,
            latencyMs: latencies.summary,
            readerWaitMsP99: readerWaits.milliseconds(atPercentile: 99), readerProbes: Int(readerWaits.count),
            flushes: flushes, flushesPerSecond: Double(flushes) / seconds,
            payloadBytes: payloadBytes, bytesWritten: bytesWritten,
            bytesWrittenPerPayloadByte: payloadBytes == 0 ? 0 : Double(bytesWritten) / Double(payloadBytes),
            storageWriteBytes: storageWrites,
            storageWriteBytesPerPayloadByte: storageWrites.map { payloadBytes == 0 ? 0 : Double($0) / Double(payloadBytes) },
            peakRSSBytes: peakRSS,
            processorMicrosPerEvent: events == 0 ? nil
                : ProcessorTime(user: (processorAfter.user - processorBefore.user) * 1e6 / Double(events),
                                system: (processorAfter.system - processorBefore.system) * 1e6 / Double(events)),
            journalFullWaits: countersAfter.journalFullWaits.flatMap { after in countersBefore.journalFullWaits.map { after - $0 } },
            read: reads, subscription: subscription, longestCheckpointMs: countersAfter.longestCheckpointMs,
            wakeLatenessMsP99: workload.rate == nil || wakeLateness.count == 0 ? nil : wakeLateness.milliseconds(atPercentile: 99),
            behindSchedule: workload.rate == nil || wakeLateness.count == 0 ? nil
                : Lateness(appends: Int(behind.count), share: Double(behind.count) / Double(wakeLateness.count),
                           p50Ms: behind.milliseconds(atPercentile: 50), p99Ms: behind.milliseconds(atPercentile: 99)),
            wokenLateMsP99: workload.rate == nil || woken.count == 0 ? nil : woken.milliseconds(atPercentile: 99),
            appendCallMs: calls.count == 0 ? nil : calls.summary,
            journalSyncMs: countersAfter.journalSyncs.flatMap { $0.count == 0 ? nil : $0.summary },
            stalls: countersAfter.spans.map {
                StallReport(slow: outcomes.flatMap(\.slowAppends), total: outcomes.reduce(0) { $0 + $1.slowAppendCount },
                            thresholdMs: workload.slowAppendMs, spans: $0)
            })
    }

    // MARK: - Writers

    private struct WriterOutcome: Sendable {
        var latencies: LatencyRecorder
        /// With a rate: how late the writer woke from its wait for each due append
        /// (the load generator's own floor) ...
        var woken: LatencyRecorder
        /// ... and how late it started the appends it was still behind for (no wait).
        var behind: LatencyRecorder
        /// With a rate: each append from its call to its return (without the lateness).
        var calls: LatencyRecorder
        /// Appends whose call took `slowAppendMs` or more: how many, and the
        /// first ``StallReport/slowAppendsKeptPerWriter`` of them (start and end).
        var slowAppendCount: Int
        var slowAppends: [(start: Int64, end: Int64)]
        var appends: Int
        var events: Int
        /// Last version appended, by stream number.
        var writer: Int
        /// Last version appended to each of the writer's streams (``Workload/ownedStreams(of:)``), nil if none.
        var lastVersions: [UInt64?]
    }

    /// Appends one event to every stream, as fast as the writers go; returns each stream's version (0).
    private func warmUp(_ system: some BenchSystem) async throws -> StreamVersions {
        try await withThrowingTaskGroup(of: [Int].self) { group in
            for writer in 0..<workload.writers {
                group.addTask {
                    let payload = BenchPayload(size: workload.eventSize, kind: workload.payload)
                    let owned = workload.ownedStreams(of: writer)
                    for stream in owned {
                        let event = EventData(type: "Reading", data: payload.make(sequence: 9_000_000_000 + stream))
                        try await system.append(stream: Workload.streamName(stream), expectedVersion: nil, events: [event])
                    }
                    return owned
                }
            }
            var versions = StreamVersions(streams: workload.streams)
            for try await owned in group { for stream in owned { versions[stream] = 0 } }
            return versions
        }
    }

    private func append(_ system: some BenchSystem, writer: Int, shared: RunState, schedule: (pacer: SchedulePacer, start: Int64)?,
                        deadline: ContinuousClock.Instant?, existing: StreamVersions) async throws -> WriterOutcome {
        // With a rate, this writer's appends are due every `interval` nanoseconds, from a
        // per-writer offset so that writers do not all start at once.
        let interval = workload.rate.map { Int64(1e9 * Double(workload.batch * workload.writers) / $0) }
        var due = (schedule?.start ?? 0) + (interval.map { $0 * Int64(writer) / Int64(workload.writers) } ?? 0)
        let owned = workload.ownedStreams(of: writer)
        let names = owned.map(Workload.streamName)
        var versions = owned.map { existing[$0] }
        var random = SeededRandom(seed: UInt64(writer) &+ 1)
        let payload = BenchPayload(size: workload.eventSize, kind: workload.payload)
        let quota = workload.quota(of: writer)
        let clock = ContinuousClock()
        var latencies = LatencyRecorder()
        var woken = LatencyRecorder()
        var behind = LatencyRecorder()
        var calls = LatencyRecorder()
        var slowAppends: [(start: Int64, end: Int64)] = []
        var slowAppendCount = 0
        let slowNanoseconds = Int64(workload.slowAppendMs * 1_000_000)
        func noteIfSlow(_ start: Int64, _ end: Int64) {
            guard end - start >= slowNanoseconds else { return }
            slowAppendCount += 1
            if slowAppends.count < StallReport.slowAppendsKeptPerWriter { slowAppends.append((start, end)) }
        }
        var written = 0
        var appends = 0
        // Without a rate, appends are timed (and the deadline checked) on the
        // monotonic clock in nanoseconds, the end of one append's timing serving as
        // the next deadline check: one clock read per append less, and no
        // `Duration` arithmetic. Events count towards the shared progress total in
        // batches (the display reads it five times a second): one atomic add on a
        // line every writer shares per 64 events, not per append.
        let deadlineNanoseconds = deadline.map { d -> Int64 in
            let left = clock.now.duration(to: d).components
            return monotonicNanoseconds() + max(0, left.seconds * 1_000_000_000 + left.attoseconds / 1_000_000_000)
        }
        var now = monotonicNanoseconds()
        var unpublished = 0
        defer { if unpublished > 0 { shared.appended.add(unpublished, ordering: .relaxed) } }
        while !shared.stopped.load(ordering: .relaxed) {
            var count = workload.batch
            if let quota {
                guard written < quota else { break }
                count = min(count, quota - written)
            }
            if let deadlineNanoseconds, now >= deadlineNanoseconds || (interval != nil && due >= deadlineNanoseconds) { break }
            let k = Int(random.next() % UInt64(owned.count))
            let events = (0..<count).map { i in
                EventData(type: "Reading", data: payload.make(sequence: writer &* 100_000_000 &+ written &+ i))
            }
            guard let interval else {
                let start = monotonicNanoseconds()
                try await system.append(stream: names[k], expectedVersion: versions[k], events: events)
                now = monotonicNanoseconds()
                latencies.record(nanoseconds: UInt64(max(0, now - start)))
                noteIfSlow(start, now)
                let last = (versions[k].map { $0 + 1 } ?? 0) + UInt64(count - 1)
                versions[k] = last
                written += count
                appends += 1
                unpublished += count
                if unpublished >= 64 {
                    shared.appended.add(unpublished, ordering: .relaxed)
                    unpublished = 0
                }
                shared.newest.store(RunState.pack(stream: owned[k], version: last), ordering: .relaxed)
                continue
            }
            // With a rate: latency counts from when the append was due.
            let wake = monotonicNanoseconds()
            if wake < due, let schedule {
                await schedule.pacer.wait(until: due)
                woken.record(nanoseconds: UInt64(max(0, monotonicNanoseconds() - due)))
            } else {
                behind.record(nanoseconds: UInt64(max(0, wake - due)))  // behind schedule: no wait
            }
            let start = due
            due += interval
            let called = monotonicNanoseconds()
            try await system.append(stream: names[k], expectedVersion: versions[k], events: events)
            now = monotonicNanoseconds()
            latencies.record(nanoseconds: UInt64(max(0, now - start)))
            calls.record(nanoseconds: UInt64(max(0, now - called)))
            noteIfSlow(called, now)
            let last = (versions[k].map { $0 + 1 } ?? 0) + UInt64(count - 1)
            versions[k] = last
            written += count
            appends += 1
            shared.appended.add(count, ordering: .relaxed)
            shared.newest.store(RunState.pack(stream: owned[k], version: last), ordering: .relaxed)
        }
        return WriterOutcome(latencies: latencies, woken: woken, behind: behind, calls: calls,
                             slowAppendCount: slowAppendCount, slowAppends: slowAppends, appends: appends, events: written,
                             writer: writer, lastVersions: versions)
    }

    // MARK: - Reader probe

    private func probeReads(_ system: some BenchSystem, _ shared: RunState, pacer: SchedulePacer) async throws -> LatencyRecorder {
        var waits = LatencyRecorder()
        let clock = ContinuousClock()
        while !shared.stopped.load(ordering: .relaxed) {
            if let (stream, version) = RunState.unpack(shared.newest.load(ordering: .relaxed)) {
                let name = Workload.streamName(stream)
                let start = clock.now
                let seen = try await system.latestVersion(of: name)
                waits.record(start.duration(to: clock.now))
                guard let seen, seen >= version else {
                    throw BenchError("\(system.name): a reader saw \(name) at version \(seen.map(String.init) ?? "none") after version \(version) was acknowledged")
                }
            }
            await pacer.wait(until: monotonicNanoseconds() + 2_000_000)
        }
        return waits
    }

    // MARK: - Reads after the ingest

    private func readBack(_ system: some BenchSystem, streamVersions: StreamVersions, events: Int) async throws -> ReadResult {
        let clock = ContinuousClock()
        let streamsStarted = clock.now
        var streamEvents = 0
        for stream in 0..<workload.streams {
            guard let last = streamVersions[stream] else { continue }
            let name = Workload.streamName(stream)
            let count = try await system.readStream(name)
            guard count == Int(last) + 1 else {
                throw BenchError("\(system.name): reading \(name) returned \(count) events, \(last + 1) were appended")
            }
            streamEvents += count
        }
        let streamSeconds = streamsStarted.duration(to: clock.now).seconds
        let allStarted = clock.now
        let allEvents = try await system.readAll()
        let allSeconds = allStarted.duration(to: clock.now).seconds
        guard allEvents == events else {
            throw BenchError("\(system.name): reading $all returned \(allEvents) events, \(events) were appended")
        }
        return ReadResult(streams: streamVersions.streamCount, streamEvents: streamEvents,
                          streamEventsPerSecond: Double(streamEvents) / max(streamSeconds, 1e-9),
                          allEvents: allEvents, allEventsPerSecond: Double(allEvents) / max(allSeconds, 1e-9))
    }

    private func progress(_ system: some BenchSystem, _ shared: RunState, since started: ContinuousClock.Instant,
                          finished: Bool) -> BenchProgress {
        BenchProgress(system: system.name, events: shared.appended.load(ordering: .relaxed),
                      totalEvents: workload.events, duration: workload.duration,
                      elapsed: started.duration(to: .now).seconds, detail: system.progressDetail(), finished: finished)
    }
}

/// Where a run stands, for a progress display.
public struct BenchProgress: Sendable {
    public var system: String
    public var events: Int
    /// The event bound, if any.
    public var totalEvents: Int?
    /// The time bound in seconds, if any.
    public var duration: Double?
    public var elapsed: Double
    public var detail: String
    public var finished: Bool

    /// How far along the run is, 0 to 1, by whichever bound is nearer.
    public var fraction: Double {
        let byEvents = totalEvents.map { Double(events) / Double(max(1, $0)) } ?? 0
        let byTime = duration.map { elapsed / $0 } ?? 0
        return finished ? 1 : min(1, max(byEvents, byTime))
    }
}

/// State the writers, the probe and the progress display share.
private final class RunState: Sendable {
    let appended = Atomic<Int>(0)
    /// The stream most recently appended to and its last acknowledged version, packed; 0 for none yet.
    let newest = Atomic<UInt64>(0)
    let stopped = Atomic<Bool>(false)

    /// Stream number in the high 32 bits, version + 1 in the low 32 (versions past 2^32 - 2 saturate).
    static func pack(stream: Int, version: UInt64) -> UInt64 {
        UInt64(stream) << 32 | min(version + 1, 0xFFFF_FFFF)
    }

    static func unpack(_ packed: UInt64) -> (stream: Int, version: UInt64)? {
        packed == 0 ? nil : (Int(packed >> 32), (packed & 0xFFFF_FFFF) - 1)
    }
}

/// The last version appended to each stream of the workload, by stream number:
/// eight bytes a stream in one array, so that with 100,000 streams the bench's
/// own bookkeeping stays out of the peak RSS it reports for the store (a
/// dictionary per writer and a merged one held several MiB).
struct StreamVersions: Sendable {
    private var versions: [UInt64]
    private static let none = UInt64.max

    init(streams: Int) { versions = Array(repeating: Self.none, count: streams) }

    subscript(stream: Int) -> UInt64? {
        get { versions[stream] == Self.none ? nil : versions[stream] }
        set { versions[stream] = newValue ?? Self.none }
    }

    /// Streams with at least one event.
    var streamCount: Int { versions.reduce(0) { $0 + ($1 == Self.none ? 0 : 1) } }
}
