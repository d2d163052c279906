-- Prediction log: one row per score served by the API (single, batch item, applicant).
-- Written by app/predlog.py in the same transaction discipline as every write:
-- BEGIN IMMEDIATE ... COMMIT, WAL, busy timeout. Created at API startup if absent.
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
