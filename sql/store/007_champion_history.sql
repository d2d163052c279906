-- Store migration 005: the history of champions of each serving folder (issue 28). One row per life-cycle command
-- that changed a serving folder: adopt (a plain model folder given the versioned layout), install (a challenger),
-- promote, rollback. `credit promote --rollback` walks back along the promotes (a stack: each promote pushes the
-- champion it replaced, each rollback pops); `credit promote --history` prints the rows.
-- serving_dir is the folder's real path; from_/to_bundle name folders of its bundles/; txn is the command's journal
-- id (app/scoring/serving.py), which lets a command killed after this row was written be completed, not undone.
CREATE TABLE IF NOT EXISTS champion_history (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    serving_dir TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('adopt', 'install', 'promote', 'rollback')),
    who TEXT NOT NULL,
    command TEXT NOT NULL,
    from_model_id TEXT,
    to_model_id TEXT,
    from_bundle TEXT,
    to_bundle TEXT,
    txn TEXT
);
CREATE INDEX IF NOT EXISTS champion_history_dir ON champion_history (serving_dir, id);
