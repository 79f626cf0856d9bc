// The floor under any per-core ingest of the benchmark's files: inflating them, in one process, the
// way medcat does (ISA-L, one gzip member inflated a plane-sized piece at a time into a buffer that
// stays in cache, the CRC and length checked at the end).
//     cc -O2 bench/inflate_floor.c -lisal -o bench/out/inflate-floor && bench/out/inflate-floor FILE...
// Prints {"files": N, "bytes_out": B, "seconds": S}.
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    enum { piece = 512 * 1024 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint8_t *out = malloc(piece);
    struct inflate_state *s = malloc(sizeof *s);
    size_t total = 0;
    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 18 || st.st_size > UINT32_MAX) { fprintf(stderr, "%s: cannot read\n", argv[i]); return 1; }
        const uint8_t *in = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        isal_inflate_init(s);
        s->crc_flag = ISAL_GZIP;
        s->next_in = (uint8_t *)in;
        s->avail_in = (uint32_t)st.st_size;
        while (s->block_state != ISAL_BLOCK_FINISH) {
            s->next_out = out;
            s->avail_out = piece;
            if (isal_inflate(s) < 0 || (s->avail_out == piece && s->avail_in == 0 && s->block_state != ISAL_BLOCK_FINISH)) {
                fprintf(stderr, "%s: damaged gzip data\n", argv[i]);
                return 1;
            }
            total += piece - s->avail_out;
        }
        munmap((void *)in, st.st_size);
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("{\"files\": %d, \"bytes_out\": %zu, \"seconds\": %.3f}\n", argc - 1, total,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}
