// The split's writes without Ringstore: a sequential writer beside the
// flush-limit probe, to see whether the bytes a splitter writes to the same
// disk slow the journal's syncs. It appends 64 KiB blocks to FILE at MBPS
// megabytes a second, starts their writeback every 256 KiB
// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, as the split segments do) and
// `fdatasync`s every 500 ms (a checkpoint's sync), for SECONDS seconds.
//
//   cc -O2 Benchmarks/split-writer.c -o split-writer
//   ./split-writer FILE [MBPS=20] [SECONDS=10] &
//   ./flush-limit-tasks DIR 64 1 10 240 0 100000
//
// It prints the megabytes written. FILE is truncated first; delete it afterwards.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: split-writer FILE [MBPS=20] [SECONDS=10]\n");
        return 2;
    }
    double mbps = argc > 2 ? atof(argv[2]) : 20;
    double seconds = argc > 3 ? atof(argv[3]) : 10;
    int fd = open(argv[1], O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || mbps <= 0) {
        perror(argv[1]);
        return 1;
    }
    static char block[65536];
    for (int i = 0; i < (int)sizeof block; i++) block[i] = (char)(i * 7);
    long offset = 0, unstarted = 0;
    double start = now(), lastSync = start;
    while (now() - start < seconds) {
        double due = start + (offset / 1e6) / mbps;
        while (now() < due) nanosleep(&(struct timespec){0, 100000}, NULL);
        if (pwrite(fd, block, sizeof block, offset) != (ssize_t)sizeof block) {
            perror("pwrite");
            return 1;
        }
        offset += sizeof block;
        unstarted += sizeof block;
        if (unstarted >= 262144) {
            sync_file_range(fd, offset - unstarted, unstarted, SYNC_FILE_RANGE_WRITE);
            unstarted = 0;
        }
        if (now() - lastSync > 0.5) {
            fdatasync(fd);
            lastSync = now();
        }
    }
    printf("wrote %.0f MB\n", offset / 1e6);
    return 0;
}
