#define _GNU_SOURCE
#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <unistd.h>

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

int rs_fix_mmap_threshold(int bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}
