// Process-wide behaviour a batch command (ingest, train) chooses: how freed memory is kept, and a
// note of what each decoder thread was reading if the process dies of a fatal signal.
#ifndef MEDCAT_CPROCESS_H
#define MEDCAT_CPROCESS_H

#ifdef __cplusplus
extern "C" {
#endif

// glibc maps every large buffer (voxels, slices, sample tensors) fresh and unmaps it on free, so
// each one pays for its page faults again (a third of ingest's time in profiles, the loader's
// warm-up). This serves large blocks from the heap and keeps freed memory there, so the next buffer
// reuses pages already mapped. RSS stays at its peak, which a batch command can afford.
void mc_keep_freed_memory(void);

// Crash note: while installed, a fatal signal (abort, segfault, bus error, FPE, illegal instruction)
// writes "signal N" and the text of every non-empty slot, one per line, to `path`, then hands the
// signal on. Slots (0..255) name what each decoder thread is reading.
int mc_crash_note_install(const char *path);
void mc_crash_note_set(int slot, const char *text);
void mc_crash_note_uninstall(void);

#ifdef __cplusplus
}
#endif
#endif
