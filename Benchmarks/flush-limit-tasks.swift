// The machine's group-commit limit with Swift tasks, without Ringstore: the
// design brief's probe as it describes it, written out.
//
//   swiftc -O Benchmarks/flush-limit-tasks.swift -o flush-limit-tasks
//   ./flush-limit-tasks DIR [WRITERS=64] [RECORDS_PER_CALL=1] [SECONDS=8] [RECORD_BYTES=240] [WORK_US=0] [RATE]
//
// WRITERS tasks on the concurrency pool each loop: under one `pthread_mutex_t`
// section they reserve space, copy their records into an in-memory staging
// buffer and register their continuation, then wait. One flusher thread swaps
// the staging buffer and its waiters out, `pwrite`s the range into a
// preallocated 64 MiB file at the journal's offset (wrapping like a ring),
// `fdatasync`s, and resumes every waiter it covered. It flushes again at once
// if anything was staged meanwhile, and sleeps on a condition variable only
// when nothing was.
//
// `flush-limit.c` does the same with one thread per writer, so each flush wakes
// every writer's thread; here a resumed writer is a task on the pool's two
// threads, as in Ringstore, so this is the fairer ceiling for `ringstore bench`
// with 1 event per append. It prints events/s, flushes/s, events per flush,
// the `fdatasync` p50/p99/max, and the CPU time used per event.
//
// WORK_US makes each writer spin that many microseconds of processor time
// before each call, standing in for what a store does per append outside the
// journal (validation, encoding, the index, the caller's own work): how the
// ceiling falls as the pool's threads get busier.
//
// With RATE (events per second over all writers), each writer makes its calls
// on a schedule of its own (staggered), woken at each due time by one pacing
// thread that resumes its continuation, as `ringstore bench --rate` does; a
// writer already late calls at once. It then also prints the latency from
// each call's due time, p50/p99/p99.9/max: what the disk and the processors
// allow the bench's half-load figure to be, with no store in between.
import Foundation

let arguments = CommandLine.arguments
guard arguments.count > 1 else {
    fatalError("usage: flush-limit-tasks DIR [WRITERS] [RECORDS_PER_CALL] [SECONDS] [RECORD_BYTES]")
}
let directory = arguments[1]
let writerCount = arguments.count > 2 ? Int(arguments[2])! : 64
let recordsPerCall = arguments.count > 3 ? Int(arguments[3])! : 1
let seconds = arguments.count > 4 ? Double(arguments[4])! : 8
let recordBytes = arguments.count > 5 ? Int(arguments[5])! : 240
let workSeconds = (arguments.count > 6 ? Double(arguments[6])! : 0) / 1e6
let rate = arguments.count > 7 ? Double(arguments[7])! : 0
let fileBytes = 64 << 20
let stagingBytes = 16 << 20

@Sendable func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Everything the writers and the flusher share, guarded by `lock`.
final class Journal: @unchecked Sendable {
    var lock = pthread_mutex_t()
    var work = pthread_cond_t()
    var staging: UnsafeMutableRawPointer
    var spare: UnsafeMutableRawPointer
    var stagedBytes = 0
    var waiters: [CheckedContinuation<Void, Never>] = []
    var spareWaiters: [CheckedContinuation<Void, Never>] = []
    var written = 0  // logical bytes handed to the flusher
    var flusherIdle = false
    var stop = false
    var flushes = 0
    var events = 0
    var syncMicros: [Double] = []
    let fd: Int32

    init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(&lock, nil)
        pthread_cond_init(&work, nil)
        staging = .allocate(byteCount: stagingBytes, alignment: 64)
        spare = .allocate(byteCount: stagingBytes, alignment: 64)
        syncMicros.reserveCapacity(1 << 20)
    }

    /// Stages one call's records and waits until a sync covers them.
    func append(_ record: UnsafeRawBufferPointer) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pthread_mutex_lock(&lock)
            for _ in 0..<recordsPerCall {
                (staging + stagedBytes).copyMemory(from: record.baseAddress!, byteCount: record.count)
                stagedBytes += record.count
            }
            events += recordsPerCall
            waiters.append(continuation)
            let wake = flusherIdle
            flusherIdle = false
            pthread_mutex_unlock(&lock)
            if wake { pthread_cond_signal(&work) }
        }
    }

    /// The flusher thread's loop: take what is staged, write, sync, resume.
    func runFlusher() {
        var offset = 0
        var taken: [CheckedContinuation<Void, Never>] = []
        taken.reserveCapacity(1024)
        while true {
            pthread_mutex_lock(&lock)
            while stagedBytes == 0 && !stop {
                flusherIdle = true
                pthread_cond_wait(&work, &lock)
            }
            if stagedBytes == 0 && stop {
                pthread_mutex_unlock(&lock)
                return
            }
            swap(&staging, &spare)
            let bytes = stagedBytes
            stagedBytes = 0
            swap(&waiters, &taken)
            written += bytes
            pthread_mutex_unlock(&lock)

            var done = 0
            while done < bytes {
                let chunk = min(bytes - done, fileBytes - offset)
                let n = pwrite(fd, spare + done, chunk, off_t(offset))
                precondition(n == chunk, "pwrite: \(String(cString: strerror(errno)))")
                done += chunk
                offset = (offset + chunk) % fileBytes
            }
            let before = now()
            precondition(fdatasync(fd) == 0, "fdatasync: \(String(cString: strerror(errno)))")
            syncMicros.append((now() - before) * 1e6)
            flushes += 1
            for continuation in taken { continuation.resume() }
            taken.removeAll(keepingCapacity: true)
        }
    }

    func finish() {
        pthread_mutex_lock(&lock)
        stop = true
        pthread_mutex_unlock(&lock)
        pthread_cond_signal(&work)
    }
}


/// Resumes each waiting writer at its due time from one thread of its own (no
/// timer per sleep). At most one waiter per writer, so a plain list scanned
/// for what is due and for the earliest due time is enough.
final class Pacer: @unchecked Sendable {
    var lock = pthread_mutex_t()
    var changed = pthread_cond_t()
    var waiting: [(due: Double, continuation: CheckedContinuation<Void, Never>)] = []
    var earliest = Double.infinity
    var stop = false

    init() {
        pthread_mutex_init(&lock, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&changed, &attributes)
    }

    func wait(until due: Double) async {
        if now() >= due { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pthread_mutex_lock(&lock)
            waiting.append((due, continuation))
            let wake = due < earliest  // the pacer sleeps past it
            earliest = min(earliest, due)
            pthread_mutex_unlock(&lock)
            if wake { pthread_cond_signal(&changed) }
        }
    }

    func run() {
        var due: [CheckedContinuation<Void, Never>] = []
        pthread_mutex_lock(&lock)
        while !stop {
            let t = now()
            due.append(contentsOf: waiting.lazy.filter { $0.due <= t }.map(\.continuation))
            waiting.removeAll { $0.due <= t }
            earliest = waiting.lazy.map(\.due).min() ?? .infinity
            if !due.isEmpty {
                pthread_mutex_unlock(&lock)
                for continuation in due { continuation.resume() }
                due.removeAll(keepingCapacity: true)
                pthread_mutex_lock(&lock)
            } else if earliest < .infinity {
                var until = timespec(tv_sec: Int(earliest), tv_nsec: Int((earliest - Double(Int(earliest))) * 1e9))
                pthread_cond_timedwait(&changed, &lock, &until)
            } else {
                pthread_cond_wait(&changed, &lock)
            }
        }
        pthread_mutex_unlock(&lock)
    }
}

let path = directory + "/flush-limit-tasks.dat"
let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
precondition(fd >= 0, "open \(path): \(String(cString: strerror(errno)))")
precondition(posix_fallocate(fd, 0, off_t(fileBytes)) == 0, "fallocate")
// Write the file once so that the measured writes overwrite allocated blocks.
let zeros = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
memset(zeros, 0, 1 << 20)
for chunk in 0..<(fileBytes >> 20) { _ = pwrite(fd, zeros, 1 << 20, off_t(chunk << 20)) }
precondition(fsync(fd) == 0)

let journal = Journal(fd: fd)
let flusher = Thread { journal.runFlusher() }
flusher.start()

var usageBefore = rusage()
getrusage(RUSAGE_SELF.rawValue, &usageBefore)
let start = now()
let deadline = start + seconds
let pacer = Pacer()
let pacerThread = Thread { pacer.run() }
if rate > 0 { pacerThread.start() }
// Seconds per call for each writer, and each writer's first due time (staggered).
let interval = rate > 0 ? Double(writerCount * recordsPerCall) / rate : 0
let latencies: [Double] = await withTaskGroup(of: [Double].self) { group in
    for writer in 0..<writerCount {
        group.addTask {
            let record = UnsafeMutableRawBufferPointer.allocate(byteCount: recordBytes, alignment: 8)
            defer { record.deallocate() }
            memset(record.baseAddress!, 0x5a, recordBytes)
            var latencies: [Double] = []
            var due = start + interval * Double(writer) / Double(writerCount)
            while now() < deadline {
                if rate > 0 { await pacer.wait(until: due) }
                if workSeconds > 0 {
                    let until = now() + workSeconds
                    while now() < until {}
                }
                await journal.append(UnsafeRawBufferPointer(record))
                if rate > 0 {
                    latencies.append(now() - due)
                    due += interval
                }
            }
            return latencies
        }
    }
    var all: [Double] = []
    for await part in group { all += part }
    return all
}
let elapsed = now() - start
var usageAfter = rusage()
getrusage(RUSAGE_SELF.rawValue, &usageAfter)
journal.finish()
while !flusher.isFinished { usleep(1000) }
if rate > 0 {
    pthread_mutex_lock(&pacer.lock)
    pacer.stop = true
    pthread_mutex_unlock(&pacer.lock)
    pthread_cond_signal(&pacer.changed)
}
close(fd)
unlink(path)

func cpuSeconds(_ u: rusage) -> Double {
    Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6
        + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}
let syncs = journal.syncMicros.sorted()
func percentile(_ p: Double) -> Double { syncs.isEmpty ? 0 : syncs[min(syncs.count - 1, Int(Double(syncs.count) * p))] }
let events = Double(journal.events)
let cpu = cpuSeconds(usageAfter) - cpuSeconds(usageBefore)
print(String(format: "%d writers, %d per call, %d-byte records, %.1f us of work per call, %.1f s", writerCount, recordsPerCall, recordBytes, workSeconds * 1e6, elapsed))
print(String(format: "events/s %.0f, flushes/s %.0f, events per flush %.1f", events / elapsed, Double(journal.flushes) / elapsed, events / Double(max(journal.flushes, 1))))
print(String(format: "fdatasync p50 %.3f ms, p99 %.3f ms, max %.1f ms", percentile(0.5) / 1000, percentile(0.99) / 1000, (syncs.last ?? 0) / 1000))
print(String(format: "CPU %.2f s (%.0f%% of one processor), %.2f us per event", cpu, 100 * cpu / elapsed, 1e6 * cpu / events))
if rate > 0 {
    let sorted = latencies.sorted()
    func at(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
    print(String(format: "at %.0f events/s: latency from the due time p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.1f ms", rate, at(0.5), at(0.99), at(0.999), (sorted.last ?? 0) * 1000))
}
