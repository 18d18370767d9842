// The machine's group-commit limit, without Ringstore: what durable appends per
// second the disk's flush latency allows when N writers share one file.
//
//   cc -O2 -pthread Benchmarks/flush-limit.c -o flush-limit
//   ./flush-limit DIR [WRITERS=64] [RECORDS_PER_CALL=1] [SECONDS=8] [RECORD_BYTES=240] [RATE]
//
// Each writer thread copies its records into an in-memory staging buffer under
// one mutex (reserve, copy) and waits until the flusher has made them durable.
// One flusher thread takes the whole unflushed range, `pwrite`s it into a
// preallocated file at the journal's offset (wrapping like a ring) and
// `fdatasync`s, then wakes every writer it covered. Waking a thread per writer
// on every flush costs more than the disk does, so this measures less than the
// disk allows: `flush-limit-tasks.swift` (Swift tasks, as the design brief's
// probe and Ringstore) is the ceiling to read `ringstore bench` against, paced
// too. This one is kept because earlier figures in the README and
// docs/PERFORMANCE.md were measured with it. It prints events/s, flushes/s, events per flush and
// the fdatasync latency's median, 99th percentile and maximum (the device's
// own stalls, with nothing else writing).
//
// With RATE (events per second), each writer makes its calls on a schedule
// of its own (staggered, as `ringstore bench --rate` does) and the probe
// prints the latency from when each call was due, p50 and p99: what this disk
// allows the bench's half-load latency figure to be.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { FILE_BYTES = 64 << 20, STAGING_BYTES = 16 << 20 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t durableChanged = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static char *staging;
static uint64_t written, durable;  // logical bytes
static uint64_t flushes;
static int stop;
static int fd;
static int recordsPerCall = 1, recordBytes = 240;
static double syncMicros[1 << 20];
static size_t syncCount;
static double rate;  // events per second over all writers; 0: as fast as possible
static int writerCount;
static double startTime;
// With a rate: each call's latency from its due time, per writer.
enum { LATENCIES_PER_WRITER = 1 << 18 };
struct writerResult { uint64_t events; size_t count; double *latencyMicros; };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleepUntil(double when) {
    struct timespec t = { (time_t)when, (long)((when - (time_t)when) * 1e9) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) != 0) {}
}

static void *writer(void *arg) {
    int index = (int)(intptr_t)arg;
    char record[65536];
    memset(record, 'x', sizeof record);
    struct writerResult *result = calloc(1, sizeof *result);
    uint64_t *events = &result->events;
    size_t bytes = (size_t)recordBytes * recordsPerCall;
    double interval = rate > 0 ? recordsPerCall * writerCount / rate : 0;
    double due = startTime + interval * index / writerCount;
    if (rate > 0) result->latencyMicros = malloc(LATENCIES_PER_WRITER * sizeof(double));
    for (;;) {
        if (rate > 0) {
            if (now() < due) sleepUntil(due);
        }
        pthread_mutex_lock(&lock);
        if (stop) { pthread_mutex_unlock(&lock); break; }
        while (written - durable + bytes > STAGING_BYTES && !stop) pthread_cond_wait(&durableChanged, &lock);
        for (size_t done = 0; done < bytes;) {  // copy into the staging ring
            size_t at = (written + done) % STAGING_BYTES, n = bytes - done;
            if (n > STAGING_BYTES - at) n = STAGING_BYTES - at;
            if (n > sizeof record) n = sizeof record;
            memcpy(staging + at, record, n);
            done += n;
        }
        written += bytes;
        uint64_t mine = written;
        pthread_cond_signal(&work);
        while (durable < mine && !stop) pthread_cond_wait(&durableChanged, &lock);
        int acknowledged = durable >= mine;  // a call cut short by the stop is not counted
        pthread_mutex_unlock(&lock);
        if (acknowledged) {
            *events += recordsPerCall;
            if (rate > 0 && result->count < LATENCIES_PER_WRITER) result->latencyMicros[result->count++] = (now() - due) * 1e6;
        }
        due += interval;
    }
    return result;
}

static void *flusher(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (written == durable && !stop) pthread_cond_wait(&work, &lock);
        if (stop) { pthread_mutex_unlock(&lock); return NULL; }
        uint64_t from = durable, to = written;
        pthread_mutex_unlock(&lock);
        for (uint64_t at = from; at < to;) {  // staging and file both wrap
            size_t s = at % STAGING_BYTES, f = at % FILE_BYTES, n = to - at;
            if (n > STAGING_BYTES - s) n = STAGING_BYTES - s;
            if (n > FILE_BYTES - f) n = FILE_BYTES - f;
            if (pwrite(fd, staging + s, n, (off_t)f) != (ssize_t)n) { perror("pwrite"); exit(1); }
            at += n;
        }
        double t0 = now();
        if (fdatasync(fd) != 0) { perror("fdatasync"); exit(1); }
        if (syncCount < sizeof syncMicros / sizeof *syncMicros) syncMicros[syncCount++] = (now() - t0) * 1e6;
        pthread_mutex_lock(&lock);
        durable = to;
        flushes++;
        pthread_cond_broadcast(&durableChanged);
        pthread_mutex_unlock(&lock);
    }
}

static int byValue(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s DIR [WRITERS] [RECORDS_PER_CALL] [SECONDS] [RECORD_BYTES]\n", argv[0]); return 2; }
    int writers = argc > 2 ? atoi(argv[2]) : 64;
    recordsPerCall = argc > 3 ? atoi(argv[3]) : 1;
    double seconds = argc > 4 ? atof(argv[4]) : 8;
    recordBytes = argc > 5 ? atoi(argv[5]) : 240;
    rate = argc > 6 ? atof(argv[6]) : 0;
    writerCount = writers;
    if (writers < 1 || recordsPerCall < 1 || seconds <= 0 || recordBytes < 1 || rate < 0 ||
        (long)recordBytes * recordsPerCall > STAGING_BYTES / 4) {
        fprintf(stderr, "flush-limit: writers, records per call, seconds, record bytes and rate must be positive (one call under 4 MiB)\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/flush-limit.probe", argv[1]);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(path); return 1; }
    if (posix_fallocate(fd, 0, FILE_BYTES) != 0 || fsync(fd) != 0) { perror("preallocate"); return 1; }
    staging = malloc(STAGING_BYTES);

    pthread_t flush, *threads = calloc(writers, sizeof *threads);
    pthread_create(&flush, NULL, flusher, NULL);
    double start = now();
    startTime = start;
    for (int i = 0; i < writers; i++) pthread_create(&threads[i], NULL, writer, (void *)(intptr_t)i);
    struct timespec pause = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
    nanosleep(&pause, NULL);
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&durableChanged);
    pthread_cond_broadcast(&work);
    pthread_mutex_unlock(&lock);
    double elapsed = now() - start;
    uint64_t events = 0;
    double *latencies = NULL;
    size_t latencyCount = 0;
    for (int i = 0; i < writers; i++) {
        struct writerResult *result;
        pthread_join(threads[i], (void **)&result);
        events += result->events;
        if (result->count) {
            latencies = realloc(latencies, (latencyCount + result->count) * sizeof *latencies);
            memcpy(latencies + latencyCount, result->latencyMicros, result->count * sizeof *latencies);
            latencyCount += result->count;
        }
        free(result->latencyMicros);
        free(result);
    }
    pthread_join(flush, NULL);
    qsort(syncMicros, syncCount, sizeof *syncMicros, byValue);
    printf("writers %d, %d records of %d bytes per call, %.1f s: %.0f events/s, %.0f flushes/s, %.1f events per flush, fdatasync p50 %.0f us, p99 %.0f us, max %.1f ms\n",
           writers, recordsPerCall, recordBytes, elapsed, events / elapsed, flushes / elapsed,
           flushes ? (double)events / flushes : 0, syncCount ? syncMicros[syncCount / 2] : 0,
           syncCount ? syncMicros[syncCount * 99 / 100] : 0, syncCount ? syncMicros[syncCount - 1] / 1000 : 0);
    if (latencyCount) {
        qsort(latencies, latencyCount, sizeof *latencies, byValue);
        printf("rate %.0f events/s: latency from due p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.1f ms\n", rate,
               latencies[latencyCount / 2] / 1000, latencies[latencyCount * 99 / 100] / 1000,
               latencies[latencyCount * 999 / 1000] / 1000, latencies[latencyCount - 1] / 1000);
    }
    free(latencies);
    close(fd);
    unlink(path);
    return 0;
}
