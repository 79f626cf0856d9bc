// The floor under any per-core ingest of the benchmark's files: inflating them, in one process, with
// the library and the allocation pattern medcat uses (libdeflate into a buffer sized from the gzip
// trailer, glibc keeping freed memory as `medcat ingest` asks it to).
//     cc -O2 bench/inflate_floor.c -ldeflate -o bench/out/inflate-floor && bench/out/inflate-floor FILE...
// Prints {"files": N, "bytes_out": B, "seconds": S}.
#include <fcntl.h>
#include <libdeflate.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t total = 0;
    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 18) { fprintf(stderr, "%s: cannot read\n", argv[i]); return 1; }
        const uint8_t *in = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        size_t len = st.st_size;
        uint32_t isize = in[len - 4] | in[len - 3] << 8 | in[len - 2] << 16 | (uint32_t)in[len - 1] << 24;
        uint8_t *out = malloc(isize);
        size_t n = 0;
        if (libdeflate_gzip_decompress(d, in, len, out, isize, &n) != LIBDEFLATE_SUCCESS) { fprintf(stderr, "%s: not one gzip member\n", argv[i]); return 1; }
        total += n;
        free(out);
        munmap((void *)in, len);
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("{\"files\": %d, \"bytes_out\": %zu, \"seconds\": %.3f}\n", argc - 1, total,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}
