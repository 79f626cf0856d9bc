#include "CSQLiteBind.h"

#include <sqlite3.h>

int mc_sqlite_parameter_index(void *stmt, const char *name) { return sqlite3_bind_parameter_index(stmt, name); }
void mc_sqlite_bind_int(void *stmt, int index, int64_t value) { sqlite3_bind_int64(stmt, index, value); }
void mc_sqlite_bind_double(void *stmt, int index, double value) { sqlite3_bind_double(stmt, index, value); }
void mc_sqlite_bind_text(void *stmt, int index, const char *text) { sqlite3_bind_text(stmt, index, text, -1, SQLITE_TRANSIENT); }

int mc_sqlite_run(void *stmt) {
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : rc;
}
