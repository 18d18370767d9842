#ifndef RINGSTORE_SUPPORT_H
#define RINGSTORE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CRC32C (Castagnoli) of `length` bytes, continuing from `crc`.
///
/// Pass 0 as `crc` for a fresh checksum; pass a previous result to continue over
/// more bytes (`crc(a ++ b) == rs_crc32c(rs_crc32c(0, a), b)`). Uses the SSE4.2
/// `crc32` instruction on x86-64 or the ARMv8 CRC extension on arm64 when the
/// processor has it (checked once, at run time), and a table otherwise.
uint32_t rs_crc32c(uint32_t crc, const void *bytes, size_t length);

/// The portable table implementation, exposed so tests can compare both paths.
uint32_t rs_crc32c_portable(uint32_t crc, const void *bytes, size_t length);

/// The hardware implementation; only valid when `rs_crc32c_hardware_available()`.
uint32_t rs_crc32c_hardware(uint32_t crc, const void *bytes, size_t length);

/// 1 when this processor has a CRC32C instruction the library uses, else 0.
int rs_crc32c_hardware_available(void);

/// `syncfs(2)`: flushes every dirty file of the file system holding `fd`.
/// Declared here because the Swift Glibc module does not export it.
int rs_syncfs(int fd);

/// `sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE)`: starts writing
/// back that range's dirty pages without waiting for them (a hint: it makes
/// nothing durable). Declared here for the same reason as `rs_syncfs`.
int rs_start_writeback(int fd, int64_t offset, int64_t count);

/// `sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
/// | SYNC_FILE_RANGE_WAIT_AFTER)`: writes the file's dirty pages and waits until
/// the device has them (in its volatile cache: nothing durable, no metadata).
int rs_write_back_and_wait(int fd);

/// `statfs(path).f_type`: the file system's magic number, or -1 on failure.
int64_t rs_file_system_type(const char *path);

/// `sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WAIT_BEFORE)`: waits
/// until the writeback already started in that range has reached the device
/// (not its cache's stable storage, and not the file's metadata: it makes
/// nothing durable), starting none itself. For pacing only.
int rs_finish_writeback(int fd, int64_t offset, int64_t count);

/// Asks the processor to bring the cache line holding `address` into its
/// caches, to be written (a hint: it never faults, whatever the address).
/// For loops that will touch a table at an index known a few steps ahead.
static inline void rs_prefetch(const void *address) { __builtin_prefetch(address, 1, 3); }

/// Names the calling thread (the first 15 bytes of `name`), for `top -H`,
/// `perf` and debuggers. Declared here for the same reason as `rs_syncfs`.
void rs_set_thread_name(const char *name);

/// Sets the calling thread's time slice in the kernel's fair scheduler
/// (EEVDF, Linux 6.12 and later: `sched_setattr` with `sched_runtime` for
/// `SCHED_OTHER`, clamped by the kernel to 0.1-100 ms), keeping its policy and
/// nice value, so its CPU share is unchanged. A thread with a longer slice
/// than the default gets a later virtual deadline, and a waking thread with a
/// shorter slice may cut its run short (EEVDF's short-slice preemption) rather
/// than wait for the next tick. Older kernels ignore the value. Threads of real-time,
/// deadline or idle policy are left alone. Returns 0, or -1 with `errno`.
/// Needs no privilege.
int rs_set_thread_slice(uint64_t nanoseconds);

/// The calling thread's time slice as `sched_getattr` reports it (Linux 6.12
/// and later report the fair scheduler's slice; earlier kernels 0), 0 on failure.
uint64_t rs_thread_slice(void);

/// glibc's `mallopt(M_MMAP_THRESHOLD, bytes)`, which also turns off its
/// dynamic adjustment of that threshold (see `MallocTuning` for why); 0 where
/// the C library is not glibc. Declared here since `<malloc.h>` is not part of
/// Swift's Glibc module.
int rs_fix_mmap_threshold(int bytes);

/// glibc's `malloc_trim(0)`: gives the pages of free heap memory in every
/// arena back to the system (see `HeapTrim` for when); 1 if any were given
/// back, 0 otherwise and where the C library is not glibc.
int rs_trim_heap(void);

/// The process's anonymous resident memory in bytes (`/proc/self/statm`:
/// resident less file-backed and shared pages), -1 where unavailable. One
/// small read, without the parsing of `/proc/self/status`.
int64_t rs_anonymous_resident_bytes(void);

/// A number never returned before in this process: each thread takes blocks
/// of 1,024 from one shared counter and hands them out one by one, so that
/// threads generating event IDs do not contend for one atomic per ID.
uint64_t rs_next_unique(void);

/// ThreadSanitizer's annotations (its runtime defines them; only builds made
/// with `--sanitize=thread` and `-DRINGSTORE_TSAN` may call them, see
/// `SanitizerAnnotations.swift`): the calling thread's writes between the two
/// calls are not recorded.
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);

#ifdef __cplusplus
}
#endif

#endif
