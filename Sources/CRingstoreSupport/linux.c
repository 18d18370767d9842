#define _GNU_SOURCE
#if defined(__linux__)
#include <sys/vfs.h>
#endif
#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include "ringstore_support.h"

int rs_syncfs(int fd) {
#if defined(__linux__)
    return syncfs(fd);
#else
    (void)fd;
    sync();
    return 0;
#endif
}

int rs_start_writeback(int fd, int64_t offset, int64_t count) {
#if defined(__linux__)
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)count;
    return 0;
#endif
}

int rs_write_back_and_wait(int fd) {
#if defined(__linux__)
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
#else
    (void)fd;
    return 0;
#endif
}

int64_t rs_file_system_type(const char *path) {
#if defined(__linux__)
    struct statfs fs;
    if (statfs(path, &fs) != 0) return -1;
    return (int64_t)fs.f_type;
#else
    (void)path;
    return -1;
#endif
}

int rs_finish_writeback(int fd, int64_t offset, int64_t count) {
#if defined(__linux__)
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WAIT_BEFORE);
#else
    (void)fd; (void)offset; (void)count;
    return 0;
#endif
}

void rs_set_thread_name(const char *name) {
#if defined(__linux__)
    char truncated[16];
    size_t i = 0;
    for (; i < sizeof truncated - 1 && name[i] != 0; i++) truncated[i] = name[i];
    truncated[i] = 0;
    (void)pthread_setname_np(pthread_self(), truncated);
#else
    (void)name;
#endif
}

int rs_trim_heap(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int64_t rs_anonymous_resident_bytes(void) {
#if defined(__linux__)
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[128];
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    if (length <= 0) return -1;
    text[length] = 0;
    /* size resident shared text lib data dt, in pages */
    int64_t fields[3] = {0, 0, 0};
    const char *c = text;
    for (int field = 0; field < 3; field++) {
        while (*c == ' ') c++;
        if (*c < '0' || *c > '9') return -1;
        while (*c >= '0' && *c <= '9') fields[field] = fields[field] * 10 + (*c++ - '0');
    }
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || fields[2] > fields[1]) return -1;
    return (fields[1] - fields[2]) * (int64_t)page;
#else
    return -1;
#endif
}

int rs_fix_mmap_threshold(int bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}

#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
/* The kernel's `struct sched_attr` (first version, 48 bytes); glibc before
   2.41 declares neither it nor the calls. */
struct rs_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};
#endif

int rs_set_thread_slice(uint64_t nanoseconds) {
#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
    struct rs_sched_attr attr;
    memset(&attr, 0, sizeof attr);
    if (syscall(SYS_sched_getattr, 0, &attr, (unsigned)sizeof attr, 0) != 0) return -1;
    /* Only the time-sharing classes take a slice; leave real-time, deadline
       and idle threads (a process started under `chrt`) as they are. */
    if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH) return 0;
    attr.size = sizeof attr;
    attr.sched_flags = 0;
    attr.sched_runtime = nanoseconds;
    attr.sched_deadline = 0;
    attr.sched_period = 0;
    return (int)syscall(SYS_sched_setattr, 0, &attr, 0);
#else
    (void)nanoseconds;
    return 0;
#endif
}

uint64_t rs_thread_slice(void) {
#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
    struct rs_sched_attr attr;
    memset(&attr, 0, sizeof attr);
    if (syscall(SYS_sched_getattr, 0, &attr, (unsigned)sizeof attr, 0) != 0) return 0;
    return attr.sched_runtime;
#else
    return 0;
#endif
}
