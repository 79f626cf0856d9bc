#include "CProcess.h"

#include <malloc.h>

void mc_keep_freed_memory(void) {
#ifdef M_MMAP_MAX
    // One arena: threads' own arenas grow by mmap only, which M_MMAP_MAX = 0 forbids.
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#endif
}
