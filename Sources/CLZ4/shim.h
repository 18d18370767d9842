#ifndef RINGSTORE_CLZ4_SHIM_H
#define RINGSTORE_CLZ4_SHIM_H
// liblz4 from the system (Debian: liblz4-dev). Block format only: stream files
// frame their own blocks, so the LZ4 frame format is not needed.
#include <lz4.h>
#endif
