#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Synchronization

/// Syncs asked for from outside the flusher: `flush()`, the splitter's before it
/// copies relaxed-mode records, header writes. Every one goes through
/// ``RingSync``, which serialises them with the flusher's.
extension JournalWriter {
    /// Flushes everything written so far and returns once it is durable.
    func flush() async throws {
        // An append of nothing would need a record; instead wait for the cursor.
        let target = state.withLock { $0.reserved }
        guard durable < target else { return }
        if let failure { throw failure }
        if case .relaxed = mode {
            // Sync now rather than wait for the interval (after a failed sync, this
            // one writes the unflushed range again first).
            try await forceSync(upTo: target)
            return
        }
        while durable < target {
            if let failure { throw failure }
            if let error = ringSync.lastError { throw error }
            try await Task.sleep(for: .microseconds(100))
        }
    }

    /// Makes the journal durable at least up to `target` (≤ written), from the
    /// calling thread: the splitter uses it before a checkpoint in relaxed mode.
    func syncNow(upTo target: UInt64) throws {
        guard durable < target else { return }
        precondition(written >= target, "cannot sync past the written cursor")
        try syncFromOutside()
    }

    /// Relaxed mode: make everything up to `target` durable now.
    private func forceSync(upTo target: UInt64) async throws {
        while written < target {
            if let failure { throw failure }
            try await Task.sleep(for: .microseconds(100))
        }
        // The flusher owns the written cursor, not the syncs: any sync of the ring
        // goes through `RingSync`, which serialises them.
        try syncFromOutside()
    }

    /// Writes a header slot of the journal and syncs it (through ``RingSync``:
    /// the header's sync is a sync of the ring like any other).
    func writeHeader(_ bytes: [UInt8], at offset: UInt64) throws {
        do {
            try ringSync.writeHeader(bytes, at: offset)
        } catch {
            wake.signal()  // a failed sync leaves a repair (or a lost record) for the flusher
            throw error
        }
    }

    /// A sync from another thread (the splitter, `flush()` in relaxed mode).
    private func syncFromOutside() throws {
        do {
            try ringSync.sync()
            flushCount.add(1, ordering: .relaxed)
        } catch {
            wake.signal()  // a failed sync leaves a repair (or a lost record) for the flusher
            throw error
        }
    }
}
