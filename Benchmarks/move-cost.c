// What the segment mover's writes cost a device, without Ringstore: STREAMS
// files, each appended BYTES in every round, in batches of BATCH files made
// durable as the mover's batches are on ext4 with a journal (each file's pages
// written back and waited for with `sync_file_range`, one `fsync` of the
// folder, which commits the file system's journal, one `fdatasync` for the
// device's cache), then a `syncfs` at the end of the round so that the
// metadata's home writes are counted too. The first round creates the files.
//
// LAYOUT says where the files go: `hash` spreads them over 256 folders by a
// hash of their number (as the store names stream files), `chunk` puts
// CHUNK consecutive numbers in each folder (so a batch, which takes streams
// in number order, touches one folder and, on ext4, neighbouring inodes).
// With PREALLOC=N in the environment the first round also reserves N bytes
// of each file (`fallocate`, keeping its size). `bucket` shares CHUNK files
// among all the streams instead (stream i in file i's hash mod CHUNK, in one
// folder): a batch appends each of its streams' bytes to its file, the
// streams of one file in one write, then syncs the files it wrote as above.
//
//   cc -O2 Benchmarks/move-cost.c -o move-cost
//   ./move-cost DIR hash|chunk|bucket STREAMS ROUNDS [BATCH=64] [BYTES=300] [CHUNK=4096]
//
// With PACE=N in the environment the batches keep to N streams a second (a
// mover sharing the device with a journal: run `sync-latency.c` beside it),
// and with NOSYNCFS=1 the rounds end without a `syncfs`, so
// that the file system's metadata reaches its home locations when the
// kernel's periodic writeback sends it, as it does under the store.
//
// It prints each round's seconds and files a second. On a throttled device
// the rate is the cost: at 1,000 writes a second, 850 files a second is
// about 1.2 device writes a file. Count the requests themselves with
// `perf stat -a -e block:block_bio_queue --filter 'dev == <MAJOR << 20 | MINOR>'`.
// DIR is created; delete it afterwards.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// SplitMix64's finaliser: a stream number's stand-in for the store's name hash.
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Makes a batch durable as the mover does on ext4 with a journal: each file's
// pages written back and waited for, one `fsync` of the folder (a journal
// commit), one `fdatasync` (the device's cache).
static void syncBatch(const int *fds, int count, int folderFD) {
    for (int j = 0; j < count; j++)
        sync_file_range(fds[j], 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    fsync(folderFD);
    fdatasync(fds[0]);
}

// Waits until `done` streams are due at PACE streams a second from `start` (no wait without PACE).
static void keepPace(double start, long done) {
    static double pace = -1;
    if (pace < 0) pace = getenv("PACE") ? atof(getenv("PACE")) : 0;
    if (pace <= 0) return;
    double wait = start + done / pace - now();
    if (wait > 0) {
        struct timespec t = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
        nanosleep(&t, NULL);
    }
}

// Ends a round with a `syncfs` (so the metadata's home writes count too; not
// with NOSYNCFS=1) and prints it.
static void endRound(int round, double start, int folderFD, long streams, const char *unit) {
    double moved = now();
    if (!getenv("NOSYNCFS")) syncfs(folderFD);
    double end = now();
    printf("round %d: %.2f s (+ syncfs %.2f s): %.0f %s/s\n", round, moved - start, end - moved,
           streams / (end - start), unit);
    fflush(stdout);
}

// The `bucket` layout (see the top of the file).
static int moveIntoBuckets(const char *dir, int folderFD, long streams, int rounds, int batch, int bytes,
                           long buckets, const char *data) {
    char path[512];
    int *fds = malloc(sizeof(int) * buckets);
    long *count = calloc(buckets, sizeof(long));
    int *touched = malloc(sizeof(int) * batch);
    char *buffer = malloc((size_t)batch * bytes);
    for (long b = 0; b < buckets; b++) {
        snprintf(path, sizeof path, "%s/%04lx.bucket", dir, b);
        fds[b] = open(path, O_CREAT | O_WRONLY | O_APPEND, 0644);
        if (fds[b] < 0) {
            perror(path);
            return 1;
        }
    }
    fsync(folderFD);
    for (int round = 0; round < rounds; round++) {
        double start = now();
        for (long first = 0; first < streams; first += batch) {
            int distinct = 0;
            long last = first + batch < streams ? first + batch : streams;
            for (long i = first; i < last; i++) {
                long b = (long)(mix(i) % (uint64_t)buckets);
                if (count[b]++ == 0) touched[distinct++] = (int)b;
            }
            for (int j = 0; j < distinct; j++) {
                long b = touched[j];
                for (long k = 0; k < count[b]; k++) memcpy(buffer + k * bytes, data + (k % 1000), bytes);
                if (write(fds[b], buffer, count[b] * bytes) != count[b] * bytes) {
                    perror("write");
                    return 1;
                }
                count[b] = 0;
            }
            for (int j = 0; j < distinct; j++) touched[j] = fds[touched[j]];
            syncBatch(touched, distinct, folderFD);
            keepPace(start, last);
        }
        endRound(round, start, folderFD, streams, "streams");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: move-cost DIR hash|chunk|bucket STREAMS ROUNDS [BATCH=64] [BYTES=300] [CHUNK=4096]\n");
        return 2;
    }
    const char *dir = argv[1];
    int chunked = strcmp(argv[2], "chunk") == 0;
    int bucketed = strcmp(argv[2], "bucket") == 0;
    long streams = atol(argv[3]);
    int rounds = atoi(argv[4]);
    int batch = argc > 5 ? atoi(argv[5]) : 64;
    int bytes = argc > 6 ? atoi(argv[6]) : 300;
    long chunk = argc > 7 ? atol(argv[7]) : 4096;
    long prealloc = getenv("PREALLOC") ? atol(getenv("PREALLOC")) : 0;
    if ((!chunked && !bucketed && strcmp(argv[2], "hash") != 0) || streams <= 0 || rounds <= 0 || batch <= 0
        || bytes <= 0 || bytes > 60000 || chunk <= 0) {
        fprintf(stderr, "move-cost: bad arguments\n");
        return 2;
    }
    static char data[65536];
    for (int i = 0; i < (int)sizeof data; i++) data[i] = (char)mix(i);
    char path[512];
    mkdir(dir, 0755);
    int folderFD = open(dir, O_RDONLY | O_DIRECTORY);
    if (folderFD < 0) {
        perror(dir);
        return 1;
    }
    if (bucketed) return moveIntoBuckets(dir, folderFD, streams, rounds, batch, bytes, chunk, data);
    long folders = chunked ? (streams + chunk - 1) / chunk : 256;
    for (long f = 0; f < folders; f++) {
        snprintf(path, sizeof path, "%s/%02lx", dir, f);
        mkdir(path, 0755);
    }
    fsync(folderFD);
    int *open_ = malloc(sizeof(int) * batch);
    for (int round = 0; round < rounds; round++) {
        double start = now();
        for (long first = 0; first < streams; first += batch) {
            int count = 0;
            for (long i = first; i < streams && i < first + batch; i++) {
                uint64_t hash = mix(i);
                long folder = chunked ? i / chunk : (long)(hash & 255);
                snprintf(path, sizeof path, "%s/%02lx/%016llx.stream", dir, folder, (unsigned long long)hash);
                int fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0644);
                if (fd < 0) {
                    perror(path);
                    return 1;
                }
                if (prealloc > 0 && round == 0) fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, prealloc);
                if (write(fd, data + (i % 1000), bytes) != bytes) {
                    perror("write");
                    return 1;
                }
                open_[count++] = fd;
            }
            syncBatch(open_, count, folderFD);
            for (int j = 0; j < count; j++) close(open_[j]);
            keepPace(start, first + count);
        }
        endRound(round, start, folderFD, streams, "files");
    }
    return 0;
}
