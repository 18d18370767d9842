import Dispatch
import Synchronization
import SystemPackage

/// Gathers every split-segment entry for a compaction while the verification
/// that precedes it runs: a walk of its own over the segments, on a thread of
/// its own (``startRouting(segments:in:pacing:owner:)``), a few segments at
/// most ahead of the verification's walk, so that each segment is read from
/// the device once (the second read finds it in the page cache) and gathered
/// once, rather than verified and then walked again for every range of streams.
///
/// Why a second walk rather than the verification's own: copying each entry
/// and writing the temporary files cost as much as verifying (2.3 s against
/// 1.3 s for 6.8 M entries); beside it, on a second processor, they no longer
/// add to the compaction's time.
///
/// Segments that fit the memory budget whole are gathered straight into one
/// ``SegmentHarvest`` (``Gathered/memory(_:)``); larger ones are routed to
/// temporary files under the compaction's new folder (``SegmentSpill``).
/// Nothing is routed for a store not closed cleanly (``begin(streams:closedCleanly:segmentFileBytes:)``
/// declines): it is recovered by an open first and verified again.
///
/// A write that fails is kept (``failure``) and rethrown by the compaction
/// before it uses anything gathered. Entries are gathered without their
/// payloads checked; a damaged one is a finding of the verification, which
/// refuses the compaction, so nothing gathered from a store with findings is
/// ever used.
final class SegmentRouting {
    /// What the walk gathered.
    enum Gathered {
        case none
        case memory(SegmentHarvest)
        case spill(SegmentSpill)
    }

    let folder: FilePath
    let budget: UInt64
    /// Most temporary files (0: never route to files, as tests of the pass-per-range path ask).
    let maxFiles: Int
    private(set) var gathered = Gathered.none
    private(set) var failure: (any Error)?
    /// Entries handed over.
    private(set) var entries = 0
    // Gathering in memory.
    private var arena: [UInt8] = []
    private var spans: [[Range<Int>]] = []
    private var streams = 0
    private var inMemory = false
    /// The spill of ``gathered`` (which keeps it alive), unretained: ``add(segment:offset:stream:header:block:)``
    /// runs once per entry, and taking the spill out of the enum retained and released it
    /// each time, an atomic operation that waited for the walk's outstanding memory reads
    /// (a tenth of a compaction's CPU on 8 M entries).
    private var spilling: Unmanaged<SegmentSpill>?

    /// `folder`: where a ``SegmentSpill`` is created (it must not exist).
    init(folder: FilePath, budget: UInt64, maxFiles: Int = SegmentSpill.maxFiles) {
        self.folder = folder
        self.budget = budget
        self.maxFiles = maxFiles
    }

    /// What the store's open would learn by walking the segments (their streams'
    /// heads), learnt by this walk (``SplitSegments/Prepared``): the open
    /// that follows the verification takes it instead of reading them again.
    private var preparing: SplitSegments.Prepared?

    /// Called by the verifier before the segments are walked: true if their
    /// entries are to be handed over (``segment(_:size:)``, ``add(stream:block:)``).
    func begin(streams: Int, closedCleanly: Bool, checkpoint: UInt64, segmentFileBytes: UInt64) -> Bool {
        guard closedCleanly, streams > 0, segmentFileBytes > UInt64(SplitSegment.headerSize) else { return false }
        self.streams = streams
        preparing = SplitSegments.Prepared(checkpoint: checkpoint)
        if segmentFileBytes <= budget {
            inMemory = true
            arena.reserveCapacity(Int(segmentFileBytes))
            spans = Array(repeating: [], count: streams)
            return true
        }
        guard maxFiles > 0 else { return false }
        do {
            let spill = try SegmentSpill(folder: folder, streams: streams, maxFiles: maxFiles, budget: budget)
            gathered = .spill(spill)
            spilling = Unmanaged.passUnretained(spill)
            return true
        } catch {
            failure = error
            return false
        }
    }

    /// The walk will soon hand over an entry of `stream` (a hint, see ``SplitSegment/walk(checkingPayloads:chunkBytes:lookahead:_:)``):
    /// asks for the cache line of its head.
    func prefetch(stream: UInt32) { preparing?.prefetch(stream: stream) }

    /// The walk begins segment `number`, of `size` bytes.
    func segment(_ number: UInt32, size: UInt64) { preparing?.begin(segment: number, size: size) }

    /// Something in the segments the open would not keep as it is (damage, a torn
    /// tail, a segment without a header): the open walks them itself.
    func spoil() { preparing?.spoil() }

    /// One entry (at `offset` of the segment begun last) whose envelope and block
    /// header are whole; `block` is its header and stored bytes.
    func add(segment number: UInt32, offset: UInt64, stream: UInt32, header: StreamBlock.Header, block: UnsafeRawBufferPointer) {
        guard failure == nil, Int(stream) < streams else { preparing?.spoil(); return }
        preparing?.add(segment: number, offset: offset, stream: stream, header: header)
        entries += 1
        if inMemory {
            spans[Int(stream)].append(SegmentHarvest.appendUnit(segment: number, block: block, to: &arena))
        } else if let spilling {
            do { try spilling._withUnsafeGuaranteedRef { try $0.add(stream: stream, segment: number, block: block) } } catch { failure = error }
        }
    }

    /// Hands over every entry of the segment files `names` (in `folder`, in this
    /// order: the verifier's list) by a walk of its own, on a thread of its own
    /// (``startRouting(segments:in:pacing:owner:)``), so that the copying and the
    /// temporary files' writes run beside the verification's checks instead of
    /// after each of them.
    ///
    /// Before segment `i` it waits for `pacing` (the verifier signals it as it
    /// begins each segment, and it starts at ``routingLead``): the routing reads
    /// at most that many segments ahead of the verification, so on a machine whose
    /// page cache cannot hold the segments the second read of each still finds it
    /// there. Damage is the verification's to report; here it only spoils what
    /// the open would take over (``spoil()``), as before.
    private func route(segments names: [String], in folder: FilePath, pacing: DispatchSemaphore) {
        for (index, name) in names.enumerated() {
            pacing.wait()
            guard failure == nil else { continue }
            guard let number = SplitSegment.number(inFileName: name) else { continue }
            do {
                guard let segment = try SplitSegment.open(number: number, in: folder) else {
                    spoil()
                    continue
                }
                let size = try segment.file.size()
                bytesRead += size
                self.segment(number, size: size)
                let end = try segment.walk(checkingPayloads: false, chunkBytes: 4 << 20, lookahead: Prefetch.rowsAhead) { visit, block, upcoming in
                    if let upcoming { prefetch(stream: upcoming) }
                    switch visit {
                    case .entry(let offset, let envelope, let header, _):
                        add(segment: number, offset: offset, stream: envelope.stream, header: header, block: block)
                    case .damaged:
                        spoil()
                    }
                    return true
                }
                if end < size { spoil() }
                walked(segment: index, file: segment.file)
            } catch {
                spoil()
            }
        }
    }

    /// Bytes of the segment files the routing walked (read after the join).
    private(set) var bytesRead: UInt64 = 0

    /// Walks done of each segment (of the `names` given to ``startRouting(segments:in:pacing:owner:)``):
    /// the verification's and the routing's.
    private let walksDone = Mutex<[UInt8]>([])

    /// The verification or the routing has walked segment `index` (of the names
    /// given to ``startRouting(segments:in:pacing:owner:)``), read through `file`.
    /// The second of the two drops the segment's pages from the page cache: the
    /// compaction reads it no more (the rewrite takes its entries from what was
    /// gathered), and the gathering's writes then take the pages just freed.
    /// Returns whether this call dropped them.
    ///
    /// Why: a compaction streams through about twice the store's size in new
    /// pages (the temporary files, then the new store). Keeping every segment
    /// cached besides evicts whatever else the machine had cached, and on a
    /// small box does not fit anyway; and on a virtual machine that hands free
    /// memory back to its host (free page reporting), pages the guest has not
    /// touched lately cost a fault in the host each: writing 1.5 GiB into new
    /// files ran at 250-815 MB/s, against 5.3 GB/s into pages just freed.
    @discardableResult
    func walked(segment index: Int, file: StorageFile) -> Bool {
        let second = walksDone.withLock { done -> Bool in
            if done.count <= index { done += repeatElement(0, count: index + 1 - done.count) }
            done[index] += 1
            return done[index] == 2
        }
        if second { file.dropCache(offset: 0, count: 0) }
        return second
    }

    /// Segments the routing may read ahead of the verification (see ``route(segments:in:pacing:)``).
    static let routingLead = 4

    /// Set by the routing thread once it is done, read after the join (release and
    /// acquire: what the thread wrote is visible to the caller, ThreadSanitizer included).
    private let routed = Atomic<Bool>(false)

    /// Starts ``route(segments:in:pacing:)`` on its own thread; returns it, to be
    /// joined with ``joinRouting(_:)`` before anything else touches this object.
    /// Nil if the system refused a thread: the caller routes nothing, and the
    /// compaction gathers per range instead (``failure`` says why).
    func startRouting(segments names: [String], in folder: FilePath, pacing: DispatchSemaphore, owner: String) -> BackgroundThread? {
        let thread = BackgroundThread(name: "rs-route", owner: owner)
        let handle = Handle(routing: self)
        do {
            try thread.start {
                handle.routing.route(segments: names, in: folder, pacing: pacing)
                handle.routing.routed.store(true, ordering: .releasing)
            }
            return thread
        } catch {
            failure = error
            return nil
        }
    }

    /// This object, handed to the routing thread. Unchecked: from the start to the
    /// join only that thread touches it (the verifier keeps its hands off, and
    /// only signals `pacing`).
    private struct Handle: @unchecked Sendable { let routing: SegmentRouting }

    /// Waits for the thread of ``startRouting(segments:in:pacing:owner:)``.
    func joinRouting(_ thread: BackgroundThread) {
        thread.waitUntilExited()
        let done = routed.load(ordering: .acquiring)
        assert(done, "the routing thread ended without routing")
    }

    /// What the store's open can take instead of walking the segments (nil: it walks).
    private(set) var prepared: SplitSegments.Prepared?

    /// The walk is over: what it gathered (throws a write that failed).
    func finish() throws -> Gathered {
        spilling = nil
        if let failure { throw failure }
        prepared = preparing?.final
        preparing = nil
        if inMemory {
            gathered = .memory(SegmentHarvest(numbers: 0..<UInt32(streams), arena: arena, spans: spans))
            arena = []
            spans = []
            inMemory = false
        } else if case .spill(let spill) = gathered {
            try spill.finish()
        }
        return gathered
    }

    /// Removes the temporary files, if any.
    func remove() throws {
        spilling = nil
        if case .spill(let spill) = gathered { try spill.remove() }
        gathered = .none
    }
}
