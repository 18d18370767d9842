// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4
// and most storage engines. Hardware paths for x86-64 (SSE4.2) and arm64 (ARMv8
// CRC extension) are chosen once at run time; a slicing-by-8 table covers the rest.

#include "ringstore_support.h"

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

static uint32_t table[8][256];
static int table_ready = 0;

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
    // Building the table twice from two threads is harmless: both write the same values.
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_table();
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

#if defined(__x86_64__)

__attribute__((target("sse4.2")))
uint32_t rs_crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = (const uint8_t *)bytes;
    uint64_t c = (uint32_t)~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

int rs_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

#elif defined(__aarch64__)

__attribute__((target("+crc")))
uint32_t rs_crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = (const uint8_t *)bytes;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __crc32cd(c, word);
        p += 8;
        length -= 8;
    }
    while (length--) c = __crc32cb(c, *p++);
    return ~c;
}

int rs_crc32c_hardware_available(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
#elif defined(__APPLE__)
    return 1;  // every Apple arm64 processor has the CRC extension
#else
    return 0;
#endif
}

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
