// Process-unique numbers for event IDs (see rs_next_unique in ringstore_support.h).

#include "ringstore_support.h"

#define BLOCK 1024

static uint64_t shared_next = 0;
static __thread uint64_t local_next = 0;
static __thread uint64_t local_end = 0;

uint64_t rs_next_unique(void) {
    if (local_next == local_end) {
        local_next = __atomic_fetch_add(&shared_next, BLOCK, __ATOMIC_RELAXED);
        local_end = local_next + BLOCK;
    }
    return local_next++;
}
