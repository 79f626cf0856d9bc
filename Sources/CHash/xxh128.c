#include "CHash.h"

// Debian's libxxhash picks SSE2, AVX2 or AVX-512 at its first call; this header routes XXH3_128bits
// there (same hash on every path).
#include <xxh_x86dispatch.h>

void mc_xxh128(const void *buf, size_t len, uint64_t out[2]) {
    XXH128_hash_t h = XXH3_128bits(buf, len);
    out[0] = h.low64;
    out[1] = h.high64;
}
