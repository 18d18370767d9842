// Checks the project's CRC32C (Sources/CRingstoreSupport/crc32c.c) on the
// machine it runs on: the RFC 3720 test vectors, then random buffers of many
// lengths and alignments through the hardware path (SSE4.2 on x86-64, the ARMv8
// CRC extension on arm64) against the portable table version, and both against
// a bit-at-a-time reference that shares no code with them. Continuing a
// checksum over a split buffer must give the checksum of the whole.
//
// tools/crc32c-check/run.sh builds it natively and for arm64 (run under
// qemu-aarch64). With --require-hardware it fails if this processor offers no
// CRC32C instruction, so that a run meant to test the hardware path cannot
// quietly test only the table. Exit status 0 when every check passes.

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringstore_support.h"

static int failures = 0;
static long checks = 0;

static void expect(uint32_t got, uint32_t want, const char *what, size_t length, size_t offset) {
    checks++;
    if (got == want) return;
    if (failures++ < 20) {
        fprintf(stderr, "FAIL %s: length %zu, offset %zu: got %08x, want %08x\n", what, length, offset, got, want);
    }
}

// Bit at a time, reflected polynomial 0x82F63B78: slow, obviously right.
static uint32_t reference(uint32_t crc, const uint8_t *p, size_t length) {
    uint32_t c = ~crc;
    while (length--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint64_t next_random(void) {  // xorshift64*
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

struct path {
    const char *name;
    crc_fn fn;
};

// The RFC 3720 (iSCSI) appendix B.4 vectors, and the common "123456789" check value.
static void vectors(const struct path *paths, int count) {
    uint8_t buffer[48];
    struct {
        const char *name;
        uint32_t want;
    } cases[] = {
        {"32 bytes of zeros", 0x8A9136AAu},
        {"32 bytes of 0xFF", 0x62A8AB43u},
        {"32 incrementing bytes", 0x46DD794Eu},
        {"32 decrementing bytes", 0x113FDB5Cu},
        {"iSCSI read command", 0xD9963A56u},
        {"\"123456789\"", 0xE3069283u},
    };
    for (int c = 0; c < 6; c++) {
        size_t length = 32;
        switch (c) {
        case 0: memset(buffer, 0, 32); break;
        case 1: memset(buffer, 0xFF, 32); break;
        case 2: for (int i = 0; i < 32; i++) buffer[i] = (uint8_t)i; break;
        case 3: for (int i = 0; i < 32; i++) buffer[i] = (uint8_t)(31 - i); break;
        case 4: {
            static const uint8_t pdu[48] = {
                0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
                0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
            memcpy(buffer, pdu, 48);
            length = 48;
            break;
        }
        case 5: memcpy(buffer, "123456789", 9); length = 9; break;
        }
        expect(reference(0, buffer, length), cases[c].want, "reference on an RFC 3720 vector", length, 0);
        for (int p = 0; p < count; p++) {
            char what[96];
            snprintf(what, sizeof what, "%s on %s", paths[p].name, cases[c].name);
            expect(paths[p].fn(0, buffer, length), cases[c].want, what, length, 0);
        }
    }
}

int main(int argc, char **argv) {
    int require_hardware = argc > 1 && strcmp(argv[1], "--require-hardware") == 0;
    int hardware = rs_crc32c_hardware_available();
#if defined(__x86_64__)
    const char *arch = "x86-64", *instruction = "SSE4.2 crc32";
#elif defined(__aarch64__)
    const char *arch = "arm64", *instruction = "ARMv8 CRC extension (crc32c*)";
#else
    const char *arch = "other", *instruction = "none";
#endif
    printf("crc32c-check on %s: hardware path %s (%s); table fallback checked too\n", arch,
           hardware ? "available, checked" : "NOT available", instruction);
    if (require_hardware && !hardware) {
        fprintf(stderr, "FAIL: --require-hardware, but this processor reports no CRC32C instruction\n");
        return 1;
    }

    struct path paths[3];
    int count = 0;
    paths[count++] = (struct path){"table (portable)", rs_crc32c_portable};
    if (hardware) paths[count++] = (struct path){"hardware", rs_crc32c_hardware};
    paths[count++] = (struct path){"rs_crc32c (dispatch)", rs_crc32c};

    vectors(paths, count);

    // Random buffers: every length to 1,100, then lengths around the hardware
    // path's three-lane cut-offs (192 and 3,072 bytes) and larger ones, at 16
    // alignments each, continuing from random seeds as well as from 0.
    enum { capacity = 70000 + 64 };
    uint8_t *storage = malloc(capacity);
    if (!storage) return 2;
    for (size_t i = 0; i < capacity; i++) storage[i] = (uint8_t)next_random();
    uint8_t *base = (uint8_t *)(((uintptr_t)storage + 63) & ~(uintptr_t)63);

    size_t lengths[1300];
    size_t n = 0;
    for (size_t length = 0; length <= 1100; length++) lengths[n++] = length;
    size_t extra[] = {2047, 2048, 3071, 3072, 3073, 3263, 3264, 3265, 4095, 4096, 4097, 6143, 6144, 6145, 8191, 8192,
                      9408, 12288, 16384, 65536, 65543, 69999};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) lengths[n++] = extra[i];
    while (n < sizeof lengths / sizeof lengths[0]) lengths[n++] = 1101 + (size_t)(next_random() % 20000);

    for (size_t i = 0; i < n; i++) {
        size_t length = lengths[i];
        for (size_t offset = 0; offset < 16; offset++) {
            const uint8_t *p = base + offset;
            uint32_t seed = (offset & 1) ? (uint32_t)next_random() : 0;
            // The bit-at-a-time reference is slow: all lengths at alignments 0 and 1, sampled elsewhere.
            uint32_t want = (offset < 2 || length <= 256 || i % 7 == 0) ? reference(seed, p, length)
                                                                        : rs_crc32c_portable(seed, p, length);
            for (int k = 0; k < count; k++) expect(paths[k].fn(seed, p, length), want, paths[k].name, length, offset);
        }
    }

    // Continuation: crc(a ++ b) == crc(crc(a), b), split at many points.
    for (size_t length = 0; length <= 4200; length += 97) {
        uint32_t whole = reference(0, base, length);
        for (size_t split = 0; split <= length; split += 1 + split / 3) {
            for (int k = 0; k < count; k++) {
                uint32_t first = paths[k].fn(0, base, split);
                expect(paths[k].fn(first, base + split, length - split), whole, paths[k].name, length, split);
            }
        }
    }
    free(storage);

    if (failures) {
        fprintf(stderr, "crc32c-check: %d of %ld checks FAILED\n", failures, checks);
        return 1;
    }
    printf("crc32c-check: all %ld checks passed (%zu lengths x 16 alignments, RFC 3720 vectors, split continuations)\n",
           checks, n);
    return 0;
}
