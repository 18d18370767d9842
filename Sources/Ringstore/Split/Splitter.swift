#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Copies records from the journal into per-stream files, in the background,
/// and moves the journal's checkpoint once those files are durable.
///
/// The path of a record after it is acknowledged:
/// 1. **Scan** (on the splitter thread): read the journal from the scan cursor
///    towards the acknowledged cursor (up to `roundBytes` at a time), file each
///    record's ring position under its stream (see `Pending` for why records
///    wait there), and append their global-index entries with one write. A
///    stream with a good block's worth pending (``eagerBlockBytes``) is written
///    at once.
/// 2. **Checkpoint** (when a quarter of the ring is scanned but not yet
///    checkpointed — up to half with many streams pending, see
///    ``CheckpointPolicy/checkpointBytes(capacity:pendingStreams:bytesPerSecond:)`` — when writers are short of
///    space, a second after the journal goes quiet, at least every ten seconds,
///    and on close): write every stream's pending
///    records to its file (one write per stream), publish the new split cursor
///    to readers, make every stream file written since the last checkpoint
///    durable (batched: see ``StreamDirectory/syncAll(dirty:)``), then the
///    catalog and the global index, and only then write the new checkpoint
///    into the journal header, which lets writers reuse that ring space.
///
/// A reader waiting for a stream asks for it to be written ahead of all this;
/// its wait ends as soon as that stream's file holds what it needs.
///
/// Everything it does is idempotent: after a crash it replays from the
/// checkpoint; stream files skip versions they already hold and the global
/// index is cut back to the checkpoint first.
///
/// Where each part is: the thread's loop in `Splitter+Loop`, the scan in
/// `+Scan`, writing pending records and checkpoints in `+Writing`, readers'
/// requests in `+Readers`, the records held back in ``Pending``.
final class Splitter: Sendable {
    let journal: Journal
    let split: SplitStore
    var directory: StreamDirectory { split.directory }
    var catalog: StreamCatalog { split.catalog }
    let globalIndex: GlobalIndex
    let readers: ReaderTable
    let compress: Bool
    let roundBytes: UInt64
    /// The journal writer's ``JournalWriter/splitterDoorbell`` (one object, one
    /// name): the flusher rings it when the acknowledged cursor moves, readers
    /// when they wait, the checkpointer when a job is done.
    var splitterDoorbell: Doorbell { journal.writer.splitterDoorbell }

    struct Control: ~Copyable {
        var stopping = false
        var abandoning = false
        var paused = false
        var stop = StopHandshake()
        var failure: RingstoreError?
    }
    let control = Mutex(Control())
    /// Events this splitter has scanned (stats).
    let splitEvents = Atomic<UInt64>(0)
    /// Times a due checkpoint began to wait for the segment mover (stats; see
    /// ``SegmentMover/holdsCheckpoints``).
    let segmentHolds = Atomic<UInt64>(0)
    /// Whether checkpoints' writing is paced (see `CheckpointPacing`; the
    /// store's configuration turns it off by default, tests of the splitter
    /// alone keep it on).
    let pacing: Bool
    /// Records that checkpoints' writing read with copies rather than through the
    /// ring's mapping (``mapsPass(over:spanning:)``; tests, measurements).
    let copiedRecords = Atomic<UInt64>(0)
    /// Pauses taken between slices of checkpoints' writing (tests, measurements).
    let pacedPauses = Atomic<UInt64>(0)
    /// Checkpoints whose segment writes were paced for the device
    /// (``SplitWritePace``), and the time the splitter paused between their
    /// writes (tests, measurements).
    let segmentPacedCheckpoints = Atomic<UInt64>(0)
    let segmentPacedNanoseconds = Atomic<UInt64>(0)
    /// Syncs the stream files and moves the checkpoint, off this thread.
    let checkpointer: Checkpointer
    var checkpoints: UInt64 { checkpointer.completed.load(ordering: .relaxed) }
    /// How long stream reads waited for the splitter.
    let readerWaits = DurationRecorder()
    /// Moves segment entries into stream files in the background.
    let mover: SegmentMover
    /// Tests only: hold the scan, force a checkpoint (see ``SplitterTestControls``).
    let testing = SplitterTestControls()
    private let thread: BackgroundThread

    init(journal: Journal, split: SplitStore, globalIndex: GlobalIndex, compress: Bool,
         moverPolicy: SegmentMover.Policy, pacing: Bool = true) throws {
        self.journal = journal
        self.pacing = pacing
        self.split = split
        self.globalIndex = globalIndex
        self.compress = compress
        // Small scan rounds keep the splitter quick to answer readers (requests are served between rounds).
        self.roundBytes = max(64 << 10, min(1 << 20, journal.ring.capacity / 4))
        self.readers = ReaderTable(splitPosition: journal.checkpoint)
        let bell = journal.writer.splitterDoorbell
        // While writers are short of space the split is behind, and the mover yields to it.
        let mover = try SegmentMover(store: split, policy: moverPolicy, owner: journal.ring.file.path.string,
                                     splitUnderPressure: { [journal] in
                                         let (reserved, checkpoint) = journal.spaceInUse
                                         return CheckpointPolicy.writersShortOfSpace(reserved: reserved, checkpoint: checkpoint,
                                                                                     capacity: journal.ring.capacity)
                                     },
                                     journalStalls: { [writer = journal.writer] in writer.syncStalls.load(ordering: .relaxed) },
                                     segmentDeleted: { bell.ring() })
        self.mover = mover
        do {
            self.checkpointer = try Checkpointer(journal: journal, split: split, globalIndex: globalIndex,
                                                 finished: { bell.ring() }, checkpointed: { mover.wake() })
        } catch {
            mover.stopAndWait()
            throw error
        }
        thread = BackgroundThread(name: "rs-splitter", owner: journal.ring.file.path.string, background: true)
        do {
            try thread.start { [self] in run() }
        } catch {
            checkpointer.abandonAndWait()
            mover.stopAndWait()
            throw error
        }
    }

    /// The cursor the splitter chases, the journal's acknowledged cursor:
    /// durable, or written in relaxed mode (readers then need not wait for the
    /// flush interval; the checkpoint still never passes the durable cursor).
    var acknowledged: UInt64 { journal.writer.acknowledged }

    /// Why the checkpoint cannot move, if something failed: the splitter's last
    /// failure, reported until everything it held back is written (see `run`), or
    /// else the checkpointer's, reported until its job succeeds.
    var failure: RingstoreError? { control.withLock { $0.failure } ?? checkpointer.failure }

    /// Why the ring frees no space, for a journal-full error: a failure (see
    /// ``failure``), or checkpoints waiting for the segment mover.
    var whyCheckpointsWait: RingstoreError? {
        if let failure { return failure }
        guard mover.holdsCheckpoints else { return nil }
        let mib = { (bytes: UInt64) in (bytes + (1 << 20) - 1) >> 20 }
        let moverFailure = mover.failure
        return RingstoreError(
            .journalFull,
            "the split segments hold \(mib(split.segments.checkpointedBytes)) MiB that the segment mover has yet to move into stream files, past their limit of \(mib(mover.policy.holdBytes)) MiB (three times splitSegmentBudget): checkpoints wait for the mover\(moverFailure.map { ", which reports: \($0.message)" } ?? "")",
            path: split.segments.folder.string, cause: moverFailure)
    }

    /// True once the splitter's thread has finished.
    var isStopped: Bool { control.withLock { $0.stop.stopped } }

    // MARK: - Control

    /// Stops splitting (tests use this to make readers and writers wait).
    func pause() { control.withLock { $0.paused = true } }

    func resume() {
        control.withLock { $0.paused = false }
        splitterDoorbell.ring()
    }

    /// Stops at once without splitting or checkpointing anything more, as a crash
    /// would (tests simulate crashes with it).
    func abandon() async {
        await requestStop { $0.abandoning = true }
        await checkpointer.abandon()
        await mover.stop()
        await thread.exited()
    }

    /// Splits everything acknowledged, checkpoints, and stops.
    func stop() async {
        testing.scanLimit.store(.max, ordering: .relaxed)  // a close splits everything
        await requestStop { $0.stopping = true }
        await checkpointer.stop()
        await mover.stop()
        await thread.exited()
    }

    private func requestStop(_ mark: (inout Control) -> Void) async {
        await StopHandshake.stop(request: { continuation in
            control.withLock { c in
                mark(&c)
                c.paused = false
                return c.stop.register(continuation)
            }
        }, wake: { splitterDoorbell.ring() })
    }
}
