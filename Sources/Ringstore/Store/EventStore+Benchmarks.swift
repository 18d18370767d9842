/// Hooks for the benchmark package: `@_spi(Benchmarks) import Ringstore`.
/// Not part of the supported API.
extension EventStore {
    /// Holds the splitter: nothing more is scanned, split or checkpointed until
    /// ``releaseSplitterForBenchmarks()``.
    ///
    /// Why: counting the instructions an append costs the journal alone
    /// (validation, the writer's lock section, encoding, the flusher, the
    /// acknowledger) needs the splitter's work out of the count. The ring must be
    /// large enough for the whole run, since nothing frees its space meanwhile.
    @_spi(Benchmarks) public func holdSplitterForBenchmarks() { splitter.pause() }

    /// Lets a splitter held by ``holdSplitterForBenchmarks()`` go on.
    @_spi(Benchmarks) public func releaseSplitterForBenchmarks() { splitter.resume() }

    /// Makes ``StoreStats/checkpointMaxMilliseconds`` count from now rather
    /// than from the open, so that a benchmark reports the longest checkpoint
    /// of its measured run, not of its warm-up (whose file-system sync a
    /// checkpoint may wait for).
    @_spi(Benchmarks) public func resetLongestCheckpointForBenchmarks() { splitter.checkpointer.durations.resetLongest() }
}
