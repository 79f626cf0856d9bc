// XXH3-128 from Debian's libxxhash: content identity (deduplication, checkpoint and file hashes).
#ifndef MEDCAT_CHASH_H
#define MEDCAT_CHASH_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// out[0] is the low 64 bits, out[1] the high 64 bits.
void mc_xxh128(const void *buf, size_t len, uint64_t out[2]);

#ifdef __cplusplus
}
#endif
#endif
