-- Store migration 001: the prediction log, one row per score served by the API (single, batch item,
-- applicant). Written by app/store/predlog.py: BEGIN IMMEDIATE ... COMMIT, WAL, synchronous=FULL.
-- Applied by app/store in one transaction with `PRAGMA user_version = 1`.
CREATE TABLE IF NOT EXISTS prediction_log (
    id          INTEGER PRIMARY KEY,
    ts          REAL    NOT NULL,          -- unix seconds UTC when the score was computed
    request_id  TEXT    NOT NULL UNIQUE,   -- uuid4, also returned to the caller
    client_id   INTEGER,                   -- NULL for applicants (POST /score)
    features    BLOB    NOT NULL,          -- little-endian float32 vector that was scored
    probability REAL    NOT NULL,
    decision    TEXT    NOT NULL,          -- 'accept' | 'refuse'
    model_id    TEXT    NOT NULL,
    latency_ms  REAL    NOT NULL,
    role        TEXT    NOT NULL,          -- role of the API key (never the key)
    endpoint    TEXT    NOT NULL           -- e.g. 'GET /clients/{id}/score'
);
CREATE INDEX IF NOT EXISTS prediction_log_ts ON prediction_log (ts);
-- rows copied from a data database of an earlier version (which kept the log inside it): one row per source
-- file, so the copy runs once; the copy itself is INSERT OR IGNORE by request_id, so a re-run adds nothing
CREATE TABLE IF NOT EXISTS legacy_import (
    source      TEXT    PRIMARY KEY,       -- absolute path of the data database the rows came from
    max_id      INTEGER NOT NULL,          -- its prediction_log's max(id) and count(*) when copied
    rows        INTEGER NOT NULL,
    copied      INTEGER NOT NULL,          -- rows actually added (the others were already here)
    ts          REAL    NOT NULL
);
