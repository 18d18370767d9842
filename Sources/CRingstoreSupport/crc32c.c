// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4
// and most storage engines. Hardware paths for x86-64 (SSE4.2) and arm64 (ARMv8
// CRC extension) are chosen once at run time; a slicing-by-8 table covers the rest.

#include "ringstore_support.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <arm_acle.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif
#endif

#define POLY 0x82F63B78u

// Tables are built on first use, once (pthread_once: two threads building one
// at the same time would be a data race, reading entries the other is writing);
// the flags keep later calls to a single acquiring load.
static uint32_t table[8][256];
static int table_ready = 0;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][n] = c;
        }
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t rs_crc32c_portable(uint32_t crc, const void *bytes, size_t length) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) pthread_once(&table_once, build_table);
    const uint8_t *p = (const uint8_t *)bytes;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);  // unaligned-safe; little-endian hosts only (x86-64, arm64)
        uint32_t lo = (uint32_t)word ^ c;
        uint32_t hi = (uint32_t)(word >> 32);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        length -= 8;
    }
    while (length--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

// Hardware paths. The crc32 instruction has a latency of three cycles but can
// start one per cycle, so one chain over a buffer runs at a third of the
// processor's pace. Buffers of 192 bytes and more are cut into three lanes
// checksummed side by side, and the lanes' results are joined by "shifting"
// each past the bytes that follow it (the register after N zero bytes, a
// linear map applied with four 256-entry tables built from the instruction
// itself): crc(A ++ B) = shift_|B|(crc(A)) xor crc_from_zero(B).

#if defined(__x86_64__) || defined(__aarch64__)

#if defined(__x86_64__)
#define RS_CRC_TARGET __attribute__((target("sse4.2")))
RS_CRC_TARGET static inline uint32_t hw_u64(uint32_t c, uint64_t word) { return (uint32_t)_mm_crc32_u64(c, word); }
RS_CRC_TARGET static inline uint32_t hw_u8(uint32_t c, uint8_t byte) { return _mm_crc32_u8(c, byte); }
#else
#define RS_CRC_TARGET __attribute__((target("+crc")))
RS_CRC_TARGET static inline uint32_t hw_u64(uint32_t c, uint64_t word) { return __crc32cd(c, word); }
RS_CRC_TARGET static inline uint32_t hw_u8(uint32_t c, uint8_t byte) { return __crc32cb(c, byte); }
#endif

#define SHORT_LANE 64    // bytes per lane: three lanes from 192 bytes (a typical record) on
#define LONG_LANE 1024   // three lanes from 3 KiB (blocks, index pages) on

static uint32_t shift_short[4][256];
static uint32_t shift_long[4][256];
static int shifts_ready = 0;
static pthread_once_t shifts_once = PTHREAD_ONCE_INIT;

RS_CRC_TARGET static void build_shift(uint32_t table[4][256], size_t lane) {
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t c = b << (8 * k);
            for (size_t i = 0; i < lane; i += 8) c = hw_u64(c, 0);
            table[k][b] = c;
        }
    }
}

RS_CRC_TARGET static void build_shifts(void) {
    build_shift(shift_short, SHORT_LANE);
    build_shift(shift_long, LONG_LANE);
    __atomic_store_n(&shifts_ready, 1, __ATOMIC_RELEASE);
}

static inline uint32_t shift(uint32_t table[4][256], uint32_t c) {
    return table[0][c & 0xff] ^ table[1][(c >> 8) & 0xff] ^ table[2][(c >> 16) & 0xff] ^ table[3][c >> 24];
}

/// Consumes `3 * lane` bytes at a time from *p while there are that many.
RS_CRC_TARGET static inline uint32_t three_lanes(uint32_t c, const uint8_t **p, size_t *length, size_t lane,
                                                 uint32_t table[4][256]) {
    const uint8_t *next = *p;
    size_t left = *length;
    while (left >= 3 * lane) {
        uint32_t c1 = 0, c2 = 0;
        const uint8_t *end = next + lane;
        do {
            uint64_t w0, w1, w2;
            memcpy(&w0, next, 8);
            memcpy(&w1, next + lane, 8);
            memcpy(&w2, next + 2 * lane, 8);
            c = hw_u64(c, w0);
            c1 = hw_u64(c1, w1);
            c2 = hw_u64(c2, w2);
            next += 8;
        } while (next < end);
        c = shift(table, c) ^ c1;
        c = shift(table, c) ^ c2;
        next += 2 * lane;
        left -= 3 * lane;
    }
    *p = next;
    *length = left;
    return c;
}

RS_CRC_TARGET
uint32_t rs_crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = (const uint8_t *)bytes;
    uint32_t c = ~crc;
    if (length >= 3 * SHORT_LANE) {
        if (!__atomic_load_n(&shifts_ready, __ATOMIC_ACQUIRE)) pthread_once(&shifts_once, build_shifts);
        c = three_lanes(c, &p, &length, LONG_LANE, shift_long);
        c = three_lanes(c, &p, &length, SHORT_LANE, shift_short);
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = hw_u64(c, word);
        p += 8;
        length -= 8;
    }
    while (length--) c = hw_u8(c, *p++);
    return ~c;
}

#if defined(__x86_64__)
int rs_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#else
int rs_crc32c_hardware_available(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
#elif defined(__APPLE__)
    return 1;  // every Apple arm64 processor has the CRC extension
#else
    return 0;
#endif
}
#endif

#else

uint32_t rs_crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    return rs_crc32c_portable(crc, bytes, length);
}

int rs_crc32c_hardware_available(void) { return 0; }

#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn chosen = 0;

uint32_t rs_crc32c(uint32_t crc, const void *bytes, size_t length) {
    crc_fn fn = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = rs_crc32c_hardware_available() ? rs_crc32c_hardware : rs_crc32c_portable;
        __atomic_store_n(&chosen, fn, __ATOMIC_RELEASE);
    }
    return fn(crc, bytes, length);
}
