import GRDB

/// Evaluation's tables, beside the catalog's in its database, with their own named, append-only
/// migrations. `eval_v1` is the catalog's former `v2_eval`: a catalog that ran that one has the
/// tables already and only has the migration renamed.
enum EvalSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("eval_v1_runs_scores_examples", merging: ["v2_eval"]) { db, applied in
            guard applied.isEmpty else { return }
            try db.execute(sql: """
                CREATE TABLE eval_runs (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    model TEXT NOT NULL,              -- checkpoint file name, without its folder
                    checkpoint_hash TEXT NOT NULL,    -- XXH3-128 of the checkpoint file
                    settings TEXT NOT NULL,           -- JSON: selection, protocols, seed, tolerance, device
                    started_at TEXT NOT NULL, finished_at TEXT,
                    status TEXT NOT NULL DEFAULT 'running',
                    images INTEGER NOT NULL DEFAULT 0, masks INTEGER NOT NULL DEFAULT 0, seconds REAL
                );
                -- One row per mask and protocol step: step is the click count for iterative
                -- protocols, 0 otherwise; output is 'first' (SAM's single-mask output) or 'oracle'
                -- (the best of its three multimask outputs). A NULL score is undefined.
                CREATE TABLE eval_masks (
                    run_id INTEGER NOT NULL, protocol TEXT NOT NULL, step INTEGER NOT NULL, output TEXT NOT NULL,
                    mask_id INTEGER NOT NULL,
                    dice REAL, iou REAL, nsd REAL, hd95 REAL, predicted_iou REAL,
                    PRIMARY KEY (run_id, protocol, step, output, mask_id)
                ) WITHOUT ROWID;
                -- 3D scores: a volume's slices of one class (and instance) stacked back.
                CREATE TABLE eval_cases (
                    run_id INTEGER NOT NULL, protocol TEXT NOT NULL, step INTEGER NOT NULL, output TEXT NOT NULL,
                    source_id INTEGER NOT NULL, axis TEXT NOT NULL, class_id INTEGER NOT NULL, instance INTEGER NOT NULL,
                    slices INTEGER NOT NULL, dice REAL, iou REAL, nsd REAL, hd95 REAL,
                    PRIMARY KEY (run_id, protocol, step, output, source_id, axis, class_id, instance)
                ) WITHOUT ROWID;
                -- The best and worst masks of each run and protocol, with the predicted mask (MaskBits
                -- over the image's content), for the report's thumbnails.
                CREATE TABLE eval_examples (
                    run_id INTEGER NOT NULL, protocol TEXT NOT NULL, step INTEGER NOT NULL, output TEXT NOT NULL,
                    mask_id INTEGER NOT NULL, kind TEXT NOT NULL, dice REAL NOT NULL,
                    width INTEGER NOT NULL, height INTEGER NOT NULL, prediction BLOB NOT NULL,
                    PRIMARY KEY (run_id, protocol, step, output, kind, mask_id)
                ) WITHOUT ROWID;
                """)
        }
        // The first prompt of each scored mask, as `Prompt.stableKey`, so that the leaderboard
        // compares runs only on masks they prompted alike. Older rows keep NULL (compared by mask).
        m.registerMigration("eval_v2_prompt_keys") { db in
            try db.execute(sql: "ALTER TABLE eval_masks ADD COLUMN prompt_key INTEGER")
        }
        return m
    }
}
