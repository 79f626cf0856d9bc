// The catalog's row inserts run millions of times; these bind values to a prepared sqlite3
// statement directly instead of boxing each argument as GRDB's StatementArguments do.
#ifndef MEDCAT_CSQLITEBIND_H
#define MEDCAT_CSQLITEBIND_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Parameter indexes are 1-based, as sqlite3 numbers them; sqlite3_bind_parameter_index gives a
// named parameter's.
int mc_sqlite_parameter_index(void *stmt, const char *name);
void mc_sqlite_bind_int(void *stmt, int index, int64_t value);
void mc_sqlite_bind_double(void *stmt, int index, double value);
void mc_sqlite_bind_text(void *stmt, int index, const char *text);
// Runs and resets the statement; returns 0 when it ran to completion, else sqlite3's result code.
int mc_sqlite_run(void *stmt);

#ifdef __cplusplus
}
#endif
#endif
