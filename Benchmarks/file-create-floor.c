// What a file system charges for a compaction's new stream files, without
// Ringstore: THREADS threads create FILES files spread over 256 sub-folders
// (`open(O_CREAT|O_EXCL)`, one `pwrite` of BYTES bytes, `close`, as compaction
// writes a small stream's file), then one `syncfs` makes them durable.
//
//   cc -O2 -pthread Benchmarks/file-create-floor.c -o file-create-floor
//   ./file-create-floor DIR [FILES=100000] [THREADS=2] [BYTES=5600]
//
// DIR must not exist (it is created; delete it afterwards). It prints the time
// to create and write the files and the time of the `syncfs`. On ext4, run it
// some minutes after deleting many files there: creating a file scans past
// inodes freed in the last minutes.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *root;
static int files, threads, bytes;

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *create(void *arg) {
    long lane = (long)arg;
    char path[4096];
    char *data = malloc(bytes);
    memset(data, 'x', bytes);
    for (int i = lane; i < files; i += threads) {
        snprintf(path, sizeof path, "%s/%02x/%016x.stream", root, i & 255, i * 2654435761u);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) { perror(path); exit(1); }
        if (pwrite(fd, data, bytes, 0) != bytes) { perror("pwrite"); exit(1); }
        close(fd);
    }
    free(data);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s DIR [FILES] [THREADS] [BYTES]\n", argv[0]); return 2; }
    root = argv[1];
    files = argc > 2 ? atoi(argv[2]) : 100000;
    threads = argc > 3 ? atoi(argv[3]) : 2;
    bytes = argc > 4 ? atoi(argv[4]) : 5600;
    if (threads < 1 || threads > 64 || files < 1 || bytes < 1) { fprintf(stderr, "bad arguments\n"); return 2; }
    if (mkdir(root, 0755) != 0) { perror(root); return 1; }
    char path[4096];
    for (int i = 0; i < 256; i++) {
        snprintf(path, sizeof path, "%s/%02x", root, i);
        if (mkdir(path, 0755) != 0) { perror(path); return 1; }
    }
    double start = seconds();
    pthread_t lanes[64];
    for (long i = 0; i < threads; i++) pthread_create(&lanes[i], NULL, create, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(lanes[i], NULL);
    double written = seconds();
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || syncfs(fd) != 0) { perror("syncfs"); return 1; }
    double synced = seconds();
    printf("%d files of %d bytes on %d threads: create and write %.2f s, syncfs %.2f s\n",
           files, bytes, threads, written - start, synced - written);
    return 0;
}
