// What each decoder thread is reading, written to a file if the process dies of a fatal signal.
//
// A codec library can abort or crash on a malformed file (Debian builds GDCM with assertions on).
// The next ingest run reads the note and rejects those units instead of crashing on them again.
// Everything the handler touches is preallocated, and it calls only async-signal-safe functions.
#include "CProcess.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 256
#define SLOT_BYTES 1024

static char note_path[4096];
static char slot_text[SLOTS][SLOT_BYTES];
static atomic_int slot_length[SLOTS];
static const int fatal[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
static struct sigaction previous[sizeof fatal / sizeof fatal[0]];
static atomic_int installed;

static void write_text(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_fatal(int sig) {
    int fd = open(note_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        char line[32] = "signal ";
        int n = 7;
        char digits[12];
        int d = 0;
        for (int v = sig; v > 0 && d < 11; v /= 10) digits[d++] = (char)('0' + v % 10);
        while (d > 0) line[n++] = digits[--d];
        line[n++] = '\n';
        write_text(fd, line, (size_t)n);
        for (int i = 0; i < SLOTS; i++) {
            int len = atomic_load(&slot_length[i]);
            if (len <= 0) continue;
            write_text(fd, slot_text[i], (size_t)len);
            write_text(fd, "\n", 1);
        }
        close(fd);
    }
    // Hand the signal on: the previous handler (Swift's backtracer) or the default action.
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        if (fatal[i] == sig) sigaction(sig, &previous[i], NULL);
    }
    raise(sig);
}

int mc_crash_note_install(const char *path) {
    size_t n = strlen(path);
    if (n >= sizeof note_path) return -1;
    memcpy(note_path, path, n + 1);
    for (int i = 0; i < SLOTS; i++) atomic_store(&slot_length[i], 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &sa, &previous[i]);
    atomic_store(&installed, 1);
    return 0;
}

void mc_crash_note_set(int slot, const char *text) {
    if (slot < 0 || slot >= SLOTS) return;
    atomic_store(&slot_length[slot], 0);
    if (!text) return;
    size_t n = strnlen(text, SLOT_BYTES - 1);
    memcpy(slot_text[slot], text, n);
    atomic_store(&slot_length[slot], (int)n);
}

void mc_crash_note_uninstall(void) {
    if (!atomic_exchange(&installed, 0)) return;
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &previous[i], NULL);
}
