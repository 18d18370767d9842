/*
 * httpload: the HTTP load generator of tools/bench-server.
 *
 * One thread, epoll, N keep-alive connections, one request in flight on each
 * (no pipelining), like redis-benchmark drives Redis: the same family of
 * client (C, one event loop, prebuilt request bytes), so neither system's rate
 * is held down by a costlier generator. Each request is one of STREAMS
 * prebuilt POSTs (`/stores/STORE/streams/bench-N` with one event of SIZE
 * bytes, the same bytes wrk's Lua script sends), picked at random; with
 * --get PATH every request is `GET PATH` instead (the rate of a handler that
 * does no store work). With --redis, the same loop sends Redis's
 * `XADD bench-N * data <SIZE bytes>` instead (RESP, prebuilt the same way), so
 * both systems can be driven by one client of one cost. Latency runs from the
 * request's write to the end of its answer. Prints one JSON line:
 * {"requests","seconds","requestsPerSecond","p50Ms","p99Ms","p999Ms","non2xx","socketErrors"}.
 *
 *   cc -O2 -o httpload httpload.c
 *   httpload --host 127.0.0.1 --port P [--connections 64] [--duration 10]
 *            [--streams 10000] [--event-size 200] [--store bench] [--get PATH | --redis]
 * ("non2xx" counts error answers: HTTP status not 2xx, or a RESP error.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUFFER (64 * 1024)
#define HISTOGRAM_US 1000000 /* 1 µs buckets up to 1 s; slower answers count as 1 s */

typedef struct {
    int fd;
    const char *request; /* the request being written */
    size_t request_length, written;
    char *buffer;        /* the answer being read */
    size_t filled;
    uint64_t started_ns;
} connection;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t random_state = 0x9E3779B97F4A7C15u;
static uint32_t next_random(uint32_t bound) { /* xorshift64* */
    random_state ^= random_state >> 12;
    random_state ^= random_state << 25;
    random_state ^= random_state >> 27;
    return (uint32_t)(((random_state * 0x2545F4914F6CDD1Du) >> 32) % bound);
}

static char **requests;
static size_t *request_lengths;
static uint32_t request_count;
static uint32_t *histogram;
static uint64_t completed, non2xx, socket_errors;
static int measuring;

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int open_connection(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        fprintf(stderr, "httpload: %s is not an IPv4 address\n", host);
        exit(2);
    }
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS) die("connect");
    return fd;
}

/* Writes what is left of the connection's request; 0 when all of it is out, 1 if the socket is full, -1 on error. */
static int write_request(connection *c) {
    while (c->written < c->request_length) {
        ssize_t n = write(c->fd, c->request + c->written, c->request_length - c->written);
        if (n < 0) return errno == EAGAIN ? 1 : -1;
        c->written += (size_t)n;
    }
    return 0;
}

static void start_request(connection *c) {
    uint32_t i = request_count == 1 ? 0 : next_random(request_count);
    c->request = requests[i];
    c->request_length = request_lengths[i];
    c->written = 0;
    c->started_ns = now_ns();
}

/* The length of a complete answer at the start of the buffer, 0 if more is needed, -1 if it cannot be parsed. */
static long answer_length(connection *c, int *status) {
    char *end = memmem(c->buffer, c->filled, "\r\n\r\n", 4);
    if (end == NULL) return c->filled >= READ_BUFFER ? -1 : 0;
    size_t head = (size_t)(end - c->buffer) + 4;
    if (c->filled < 12 || memcmp(c->buffer, "HTTP/1.1 ", 9) != 0) return -1;
    *status = atoi(c->buffer + 9);
    long body = -1;
    for (char *line = memchr(c->buffer, '\n', head); line != NULL && line + 1 < end; line = memchr(line + 1, '\n', (size_t)(end - line))) {
        if (strncasecmp(line + 1, "content-length:", 15) == 0) body = strtol(line + 16, NULL, 10);
    }
    if (body < 0) return -1; /* the server always sends Content-Length for these answers */
    if (head + (size_t)body > READ_BUFFER) return -1;
    return c->filled >= head + (size_t)body ? (long)(head + (size_t)body) : 0;
}

/* The same for a RESP answer: a bulk string (XADD's entry ID), a simple string or integer, or an error (*status 500). */
static long resp_answer_length(connection *c, int *status) {
    char *end = memmem(c->buffer, c->filled, "\r\n", 2);
    if (end == NULL) return c->filled >= READ_BUFFER ? -1 : 0;
    size_t line = (size_t)(end - c->buffer) + 2;
    *status = 200;
    switch (c->buffer[0]) {
    case '+': case ':': return (long)line;
    case '-': *status = 500; return (long)line;
    case '$': {
        long length = strtol(c->buffer + 1, NULL, 10);
        if (length < 0) return (long)line; /* a null bulk string */
        size_t total = line + (size_t)length + 2;
        if (total > READ_BUFFER) return -1;
        return c->filled >= total ? (long)total : 0;
    }
    default: return -1;
    }
}

static void usage(void) {
    fprintf(stderr, "usage: httpload --host H --port P [--connections N] [--duration S] [--streams N] [--event-size B] [--store S] [--get PATH | --redis]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *store = "bench", *get = NULL;
    int port = 0, connections = 64, streams = 10000, size = 200;
    double duration = 10;
    int redis = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--redis") == 0) {
            redis = 1;
            continue;
        }
        if (i + 1 >= argc) usage();
        const char *option = argv[i], *value = argv[++i];
        if (strcmp(option, "--host") == 0) host = value;
        else if (strcmp(option, "--port") == 0) port = atoi(value);
        else if (strcmp(option, "--connections") == 0) connections = atoi(value);
        else if (strcmp(option, "--duration") == 0) duration = atof(value);
        else if (strcmp(option, "--streams") == 0) streams = atoi(value);
        else if (strcmp(option, "--event-size") == 0) size = atoi(value);
        else if (strcmp(option, "--store") == 0) store = value;
        else if (strcmp(option, "--get") == 0) get = value;
        else usage();
    }
    if (port <= 0 || connections <= 0 || streams <= 0 || size < 2 || duration <= 0 || (redis && get)) usage();

    /* The requests, built once: the same bytes as wrk.format in append.lua. */
    request_count = get ? 1 : (uint32_t)streams;
    requests = calloc(request_count, sizeof *requests);
    request_lengths = calloc(request_count, sizeof *request_lengths);
    char *body = NULL;
    if (!get) {
        body = malloc((size_t)size + 64);
        int n = sprintf(body, "{\"type\":\"BenchEvent\",\"data\":\"");
        memset(body + n, 'x', (size_t)size - 2);
        strcpy(body + n + size - 2, "\"}");
    }
    for (uint32_t i = 0; i < request_count; i++) {
        char *r = malloc(1024 + (size_t)size);
        if (redis) {
            char key[32];
            int k = sprintf(key, "bench-%u", i);
            int n = sprintf(r, "*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$4\r\ndata\r\n$%d\r\n", k, key, size);
            memset(r + n, 'x', (size_t)size);
            memcpy(r + n + size, "\r\n", 2);
            requests[i] = r;
            request_lengths[i] = (size_t)n + (size_t)size + 2;
            continue;
        }
        int n = get ? sprintf(r, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", get, host, port)
                    : sprintf(r, "POST /stores/%s/streams/bench-%u HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                                 "Content-Length: %zu\r\n\r\n%s", store, i, host, port, strlen(body), body);
        requests[i] = r;
        request_lengths[i] = (size_t)n;
    }
    histogram = calloc(HISTOGRAM_US + 1, sizeof *histogram);
    random_state ^= (uint64_t)getpid() << 17;

    int epoll = epoll_create1(0);
    if (epoll < 0) die("epoll_create1");
    connection *all = calloc((size_t)connections, sizeof *all);
    for (int i = 0; i < connections; i++) {
        all[i].fd = open_connection(host, port);
        all[i].buffer = malloc(READ_BUFFER);
        start_request(&all[i]);
        struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &all[i]};
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, all[i].fd, &event) < 0) die("epoll_ctl");
    }

    uint64_t start = now_ns(), end = start + (uint64_t)(duration * 1e9);
    measuring = 1;
    struct epoll_event events[256];
    uint64_t now = start;
    while (now < end) {
        int ready = epoll_wait(epoll, events, 256, 100);
        if (ready < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < ready; e++) {
            connection *c = events[e].data.ptr;
            if (c->fd < 0) continue;
            int failed = 0;
            if (c->written < c->request_length) {
                int w = write_request(c);
                if (w < 0) failed = 1;
                else if (w == 0) { /* all out: wait for the answer only */
                    struct epoll_event event = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &event);
                }
            }
            if (!failed && (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                ssize_t n = read(c->fd, c->buffer + c->filled, READ_BUFFER - c->filled);
                if (n <= 0) {
                    if (n == 0 || errno != EAGAIN) failed = 1;
                } else {
                    c->filled += (size_t)n;
                    int status = 0;
                    long length = redis ? resp_answer_length(c, &status) : answer_length(c, &status);
                    if (length < 0) failed = 1;
                    else if (length > 0) {
                        uint64_t finished = now_ns();
                        uint64_t us = (finished - c->started_ns) / 1000;
                        histogram[us > HISTOGRAM_US ? HISTOGRAM_US : us]++;
                        completed++;
                        if (status < 200 || status > 299) non2xx++;
                        memmove(c->buffer, c->buffer + length, c->filled - (size_t)length);
                        c->filled -= (size_t)length;
                        start_request(c);
                        int w = write_request(c);
                        if (w < 0) failed = 1;
                        else if (w == 1) {
                            struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                            epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &event);
                        }
                    }
                }
            }
            if (failed) {
                socket_errors++;
                close(c->fd);
                c->fd = -1;
            }
        }
        now = now_ns();
    }
    double seconds = (double)(now - start) / 1e9;

    /* Percentiles from the histogram, in ms. */
    double percentiles[3] = {50, 99, 99.9}, values[3] = {0, 0, 0};
    for (int p = 0; p < 3; p++) {
        uint64_t wanted = (uint64_t)((double)completed * percentiles[p] / 100.0 + 0.5), seen = 0;
        if (wanted == 0) wanted = 1;
        for (uint32_t us = 0; us <= HISTOGRAM_US; us++) {
            seen += histogram[us];
            if (seen >= wanted) {
                values[p] = us / 1000.0;
                break;
            }
        }
    }
    printf("{\"requests\":%llu,\"seconds\":%.3f,\"requestsPerSecond\":%.1f,\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"p999Ms\":%.3f,"
           "\"non2xx\":%llu,\"socketErrors\":%llu}\n",
           (unsigned long long)completed, seconds, (double)completed / seconds, values[0], values[1], values[2],
           (unsigned long long)non2xx, (unsigned long long)socket_errors);
    return 0;
}
