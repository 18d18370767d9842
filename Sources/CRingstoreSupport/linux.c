#define _GNU_SOURCE
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
