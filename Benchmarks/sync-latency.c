// A journal's syncs on a clock, without Ringstore: every INTERVAL_MS, BYTES
// written at the next offset of a 64 MiB file written in full first (a ring:
// it wraps), then `fdatasync`. Prints the longest sync of each 5 s window and
// the p50/p99/p99.9/max of the run. Run beside `move-cost` with PACE and
// NOSYNCFS to see what a mover's writes do to a journal's syncs on the same
// device (docs/PERFORMANCE.md, "Shared files: what they would cost the
// device"). The defaults, 40 KB every 5 ms, are 8 MB/s, about what Ringstore's
// journal writes at full ingest on the SD-card profile.
//
//   cc -O2 Benchmarks/sync-latency.c -o sync-latency
//   ./sync-latency FILE SECONDS [INTERVAL_MS=5] [BYTES=40000]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: sync-latency FILE SECONDS [INTERVAL_MS=5] [BYTES=40000]\n");
        return 2;
    }
    double seconds = atof(argv[2]), interval = (argc > 3 ? atof(argv[3]) : 5) / 1000;
    long bytes = argc > 4 ? atol(argv[4]) : 40000, size = 64L << 20;
    int fd = open(argv[1], O_CREAT | O_RDWR, 0644);
    char *buf = calloc(1, 1 << 20);
    if (fd < 0 || !buf || bytes <= 0 || bytes > (1 << 20) || interval <= 0) {
        perror(argv[1]);
        return 1;
    }
    for (long o = 0; o < size; o += 1 << 20) pwrite(fd, buf, 1 << 20, o);
    fsync(fd);
    memset(buf, 'j', 1 << 20);
    long n = (long)(seconds / interval) + 10, count = 0, off = 0;
    double *lat = malloc(sizeof(double) * n), start = now(), windowMax = 0, windowStart = start;
    while (now() - start < seconds && count < n) {
        double due = start + count * interval;
        double wait = due - now();
        if (wait > 0) { struct timespec t = {0, (long)(wait * 1e9)}; nanosleep(&t, NULL); }
        if (off + bytes > size) off = 0;
        pwrite(fd, buf, bytes, off);
        off += bytes;
        double t0 = now();
        fdatasync(fd);
        double l = (now() - t0) * 1e3;
        lat[count++] = l;
        if (l > windowMax) windowMax = l;
        if (now() - windowStart >= 5) { printf("%5.0f s: longest sync %.1f ms\n", now() - start, windowMax); fflush(stdout); windowMax = 0; windowStart = now(); }
    }
    qsort(lat, count, sizeof *lat, cmp);
    printf("syncs %ld: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.1f ms\n", count, lat[count / 2], lat[count * 99 / 100], lat[count * 999 / 1000], lat[count - 1]);
    return 0;
}
