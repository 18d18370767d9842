/*
 * httpfloor: the cheapest HTTP/1.1 server worth measuring, for tools/bench-server --floor.
 *
 * One thread, epoll, keep-alive; reads each request (head and Content-Length
 * body), stores nothing, and answers every one with a fixed 201 and a small
 * JSON body of the size `ringstore serve` answers an append with. Its rate
 * under the same load generator is what the machine allows any HTTP server
 * over loopback: the system calls, the TCP stack on both ends and the
 * generator, with no framework, no parsing beyond the framing and no disk.
 *
 *   cc -O2 -o httpfloor httpfloor.c && httpfloor PORT   (prints "listening" once bound)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER (64 * 1024)

typedef struct {
    int fd;
    size_t filled;
    char buffer[BUFFER];
} client;

static const char body[] = "{\"stream\":\"bench-1234\",\"firstVersion\":12,\"lastVersion\":12,\"firstPosition\":1234567,\"lastPosition\":1234567}";
static char answer[256];
static size_t answer_length;

/* Bytes of the first complete request in the buffer, 0 if incomplete, -1 if unreadable. */
static long request_length(client *c) {
    char *end = memmem(c->buffer, c->filled, "\r\n\r\n", 4);
    if (end == NULL) return c->filled >= BUFFER ? -1 : 0;
    size_t head = (size_t)(end - c->buffer) + 4;
    long body = 0;
    for (char *line = memchr(c->buffer, '\n', head); line != NULL && line + 1 < end; line = memchr(line + 1, '\n', (size_t)(end - line))) {
        if (strncasecmp(line + 1, "content-length:", 15) == 0) body = strtol(line + 16, NULL, 10);
    }
    if (body < 0 || head + (size_t)body > BUFFER) return -1;
    return c->filled >= head + (size_t)body ? (long)(head + (size_t)body) : 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: httpfloor PORT\n");
        return 2;
    }
    answer_length = (size_t)snprintf(answer, sizeof answer,
                                     "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                     sizeof body - 1, body);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 1024) < 0) {
        perror("httpfloor: bind");
        return 2;
    }
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    printf("listening\n");
    fflush(stdout);
    struct epoll_event events[256];
    for (;;) {
        int ready = epoll_wait(epoll, events, 256, -1);
        for (int e = 0; e < ready; e++) {
            client *c = events[e].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    client *n = calloc(1, sizeof *n);
                    n->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = n};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            ssize_t n = read(c->fd, c->buffer + c->filled, BUFFER - c->filled);
            if (n <= 0) {
                if (n < 0 && errno == EAGAIN) continue;
                close(c->fd);
                free(c);
                continue;
            }
            c->filled += (size_t)n;
            long length;
            int answers = 0;
            while ((length = request_length(c)) > 0) {
                memmove(c->buffer, c->buffer + length, c->filled - (size_t)length);
                c->filled -= (size_t)length;
                answers++;
            }
            for (int i = 0; i < answers; i++) {
                if (write(c->fd, answer, answer_length) < 0) break; /* small answers into an idle socket: no partial writes here */
            }
            if (length < 0) {
                close(c->fd);
                free(c);
            }
        }
    }
}
