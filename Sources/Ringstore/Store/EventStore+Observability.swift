/// Starting and stopping a store's logging and metrics (see ``StoreObservability``).
extension EventStore {
    /// How often metrics are sampled while the store is open.
    static let metricsInterval: Duration = .seconds(1)

    /// At open: times flushes and checkpoint steps, logs what recovery found and
    /// how long opening took (`nanoseconds`: recovery included, until appends
    /// are accepted), starts the sampler.
    func startObserving(openedIn nanoseconds: Int64) {
        journal.writer.flushObserver.install(observability.flushDuration)
        journal.checkpointObserver.install(observability.checkpointStepDurations)
        let stats = stats()
        observability.logger.info("opened store", metadata: [
            "journalBytes": "\(stats.journalCapacity)",
            "durability": "\(configuration.durability)",
            "checkpoint": "\(stats.checkpointPosition)",
            "recoveredEvents": "\(stats.recoveredEvents)",
            "recoveryStop": "\(stats.recoveryStopReason)",
            "openMilliseconds": "\(nanoseconds / 1_000_000).\(nanoseconds / 100_000 % 10)",
            "segmentsFromSummaries": "\(split.segments.segmentsOpenedFromSummaries)",
            "bucketFilesFromSnapshot": "\(split.buckets.filesOpenedFromSnapshot)",
        ])
        // The sampler holds the store weakly, so an abandoned store can still go away.
        let task = Task.detached(priority: .low) { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.metricsInterval)
                guard let store = self, !store.isClosed else { return }
                store.publishMetrics()
            }
        }
        sampler.withLock { $0 = task }
    }

    /// Publishes one sample of the counters and cursors to the metrics backend.
    func publishMetrics() {
        observability.publish(stats(), journalFullWaits: journal.writer.journalFullWaits.load(ordering: .relaxed),
                              splitterFailure: splitter.failure, segmentsHold: splitter.mover.holdsCheckpoints)
    }

    /// At close (writer and splitter stopped): a last sample and a summary line.
    func stopObserving() {
        sampler.withLock { $0?.cancel() }
        publishMetrics()
        let stats = stats()
        observability.logger.info("closed store", metadata: [
            "appends": "\(stats.appendsAcknowledged)",
            "events": "\(stats.eventsAcknowledged)",
            "flushes": "\(stats.flushes)",
            "checkpoint": "\(stats.checkpointPosition)",
        ])
    }
}
