#!/usr/bin/env python3
"""Peer for the catalog insert benchmark: Python's sqlite3 inserting as many mask rows as medcat does
into a table with medcat's mask columns and the conventional per-row selection index (class, modality,
split), which medcat replaced by its mask_lists table, with the same pragmas, in transactions of the
same size (200 volumes × 100 slices × masks-per-image rows), using executemany. It inserts masks only:
medcat's figure also carries the image, blob, case and list rows of the same batches."""
import json, os, random, sqlite3, sys, time

path, rows = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(path + suffix):
        os.remove(path + suffix)
db = sqlite3.connect(path, isolation_level=None)
db.executescript("""
PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -524288; PRAGMA temp_store = MEMORY;
PRAGMA wal_autocheckpoint = 100000;
CREATE TABLE masks (
    id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL, class_id INTEGER NOT NULL, instance INTEGER NOT NULL,
    area INTEGER NOT NULL, x0 INTEGER NOT NULL, y0 INTEGER NOT NULL, x1 INTEGER NOT NULL, y1 INTEGER NOT NULL,
    shard_id INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
    modality_id INTEGER NOT NULL, split INTEGER NOT NULL, dataset_id INTEGER NOT NULL);
CREATE INDEX masks_select ON masks(class_id, modality_id, split);
""")
rng = random.Random(42)
batch = 200 * 100 * 4
seconds = 0.0
for b in range(0, rows, batch):
    # Rows are made per batch (memory stays flat at tens of millions); only inserting is timed.
    data = []
    for i in range(b, min(rows, b + batch)):
        x0, y0 = rng.randrange(200), rng.randrange(200)
        data.append((i // 4 + 1, rng.randrange(1, 41), 0, rng.randrange(100, 5100), x0, y0, x0 + 40, y0 + 30, 1, i * 300, 300,
                     rng.randrange(1, 9), rng.randrange(3), rng.randrange(1, 21)))
    start = time.perf_counter()
    db.execute("BEGIN")
    db.executemany("INSERT INTO masks(image_id, class_id, instance, area, x0, y0, x1, y1, shard_id, offset, length, modality_id, split, dataset_id)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", data)
    db.execute("COMMIT")
    seconds += time.perf_counter() - start
print(json.dumps({"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}))
