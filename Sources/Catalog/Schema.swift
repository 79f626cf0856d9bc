import GRDB

/// Named, append-only migrations: a released migration is never edited; changes come as new ones.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1_catalog") { db in
            try db.execute(sql: """
                CREATE TABLE datasets (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    title TEXT, layout TEXT NOT NULL, modality TEXT,
                    licence TEXT, citation TEXT,
                    manifest TEXT NOT NULL            -- the YAML the dataset was ingested with
                );
                CREATE TABLE modalities (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
                CREATE TABLE classes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT);
                -- Patients (or studies where a dataset has no patient ids). The split lives here, so
                -- one patient can never be in two splits.
                CREATE TABLE cases (
                    id INTEGER PRIMARY KEY,
                    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
                    name TEXT NOT NULL,
                    split INTEGER NOT NULL,           -- 0 train, 1 val, 2 test
                    UNIQUE (dataset_id, name)
                );
                CREATE TABLE ingest_runs (
                    id INTEGER PRIMARY KEY,
                    started_at TEXT NOT NULL, finished_at TEXT,
                    options TEXT NOT NULL,            -- JSON of the run's settings
                    status TEXT NOT NULL DEFAULT 'running',
                    files_done INTEGER NOT NULL DEFAULT 0, files_rejected INTEGER NOT NULL DEFAULT 0,
                    images INTEGER NOT NULL DEFAULT 0, masks INTEGER NOT NULL DEFAULT 0
                );
                -- One row per ingested unit (an image file, with its mask file). Paths are relative
                -- to the dataset folder.
                CREATE TABLE source_files (
                    id INTEGER PRIMARY KEY,
                    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
                    path TEXT NOT NULL, mask_path TEXT,
                    size INTEGER NOT NULL, mtime REAL NOT NULL,
                    stamp TEXT NOT NULL,              -- size and mtime of the image and mask files: unchanged units are skipped
                    content_hash TEXT,                -- XXH3-128 of the image file's bytes
                    status TEXT NOT NULL,             -- done | rejected
                    images INTEGER NOT NULL DEFAULT 0, masks INTEGER NOT NULL DEFAULT 0,
                    first_image_id INTEGER,           -- its images are ids first_image_id ..< first_image_id + images
                    run_id INTEGER REFERENCES ingest_runs(id),
                    UNIQUE (dataset_id, path)
                );
                CREATE TABLE shards (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
                -- Normalised pixels, stored once per distinct content.
                CREATE TABLE blobs (
                    id INTEGER PRIMARY KEY,
                    hash TEXT NOT NULL UNIQUE,
                    shard_id INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL
                );
                CREATE TABLE images (
                    id INTEGER PRIMARY KEY,
                    dataset_id INTEGER NOT NULL, case_id INTEGER NOT NULL, source_id INTEGER NOT NULL,
                    modality_id INTEGER NOT NULL, split INTEGER NOT NULL,
                    axis TEXT NOT NULL, slice INTEGER NOT NULL,
                    width INTEGER NOT NULL, height INTEGER NOT NULL, channels INTEGER NOT NULL,
                    orig_width INTEGER NOT NULL, orig_height INTEGER NOT NULL,
                    spacing_x REAL NOT NULL, spacing_y REAL NOT NULL, spacing_z REAL NOT NULL,
                    transform TEXT NOT NULL,          -- JSON: how to map back to the source grid
                    blob_id INTEGER NOT NULL REFERENCES blobs(id),
                    first_mask_id INTEGER NOT NULL, mask_count INTEGER NOT NULL  -- its masks: a contiguous id range
                );
                -- The one writer inserts a source file's images, and an image's masks, as contiguous id
                -- ranges and deletes them only as whole ranges; the ranges replace indexes on
                -- masks(image_id) and images(source_id), which cost more than the rows at millions of rows.
                -- modality, split and dataset are copied from the image so that filtered selections
                -- read one index.
                CREATE TABLE masks (
                    id INTEGER PRIMARY KEY,
                    image_id INTEGER NOT NULL,
                    class_id INTEGER NOT NULL, instance INTEGER NOT NULL,
                    area INTEGER NOT NULL, x0 INTEGER NOT NULL, y0 INTEGER NOT NULL, x1 INTEGER NOT NULL, y1 INTEGER NOT NULL,
                    shard_id INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
                    modality_id INTEGER NOT NULL, split INTEGER NOT NULL, dataset_id INTEGER NOT NULL
                );
                -- One selection index: class first, so class-only selections use its prefix too; entries
                -- of one (class, modality, split) follow rowid order, so a page of matches needs no sort.
                CREATE INDEX masks_select ON masks(class_id, modality_id, split);
                -- Running totals, kept in the same transactions as the rows they count, so that
                -- `catalog stats` never scans millions of rows.
                CREATE TABLE counts (
                    dataset_id INTEGER NOT NULL, modality_id INTEGER NOT NULL, class_id INTEGER NOT NULL,
                    split INTEGER NOT NULL,
                    images INTEGER NOT NULL DEFAULT 0, masks INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (dataset_id, modality_id, class_id, split)
                ) WITHOUT ROWID;
                CREATE TABLE errors (
                    id INTEGER PRIMARY KEY,
                    run_id INTEGER, dataset TEXT, path TEXT NOT NULL,
                    stage TEXT NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL
                );
                CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                """)
        }
        // v2_eval made evaluation's tables, which Eval's own migrations now own (EvalSchema.swift).
        // A UNIQUE index on content hashes takes a random insert per image: at millions of images
        // each commit dirties thousands of its pages, and that halved the insert rate (README,
        // "Catalog at scale"). The writer keeps the hashes in memory instead (BlobIndex.swift).
        m.registerMigration("v3_blob_hashes_unindexed") { db in
            try db.execute(sql: """
                CREATE TABLE blobs_unindexed (
                    id INTEGER PRIMARY KEY,
                    hash TEXT NOT NULL,
                    shard_id INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL
                );
                INSERT INTO blobs_unindexed SELECT id, hash, shard_id, offset, length FROM blobs;
                DROP TABLE blobs;
                ALTER TABLE blobs_unindexed RENAME TO blobs;
                """)
        }
        // The per-mask selection index took a B-tree insert per mask; lists of ids per group and
        // commit replace it (MaskLists.swift).
        m.registerMigration("v4_mask_lists") { db in
            try db.execute(sql: """
                CREATE TABLE mask_lists (
                    class_id INTEGER NOT NULL, modality_id INTEGER NOT NULL, split INTEGER NOT NULL, dataset_id INTEGER NOT NULL,
                    first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, count INTEGER NOT NULL,
                    ids BLOB NOT NULL,                -- ascending mask ids: LEB128 deltas, the first from first_id - 1
                    PRIMARY KEY (class_id, modality_id, split, dataset_id, first_id)
                ) WITHOUT ROWID;
                CREATE INDEX mask_lists_order ON mask_lists(first_id);
                DROP INDEX masks_select;
                """)
            try MaskLists.rebuild(db)
        }
        // Names outside classes.yaml are kept as classes of their own, marked unmapped; class_map
        // records what `catalog map-class` mapped them onto, so that later ingests follow it.
        // fixed_split: the split a dataset's own folders give a case (imagesTs, test/), which a
        // re-split keeps.
        m.registerMigration("v5_unmapped_classes_and_official_splits") { db in
            try db.execute(sql: """
                ALTER TABLE classes ADD COLUMN mapped INTEGER NOT NULL DEFAULT 1;
                CREATE TABLE class_map (name TEXT PRIMARY KEY, target TEXT NOT NULL) WITHOUT ROWID;
                ALTER TABLE cases ADD COLUMN fixed_split INTEGER;
                """)
        }
        return m
    }
}
