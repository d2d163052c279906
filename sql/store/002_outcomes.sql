-- Observed outcomes (issue 19): one row per client, the latest observation wins.
-- Written by app/monitoring/outcomes.py (`credit outcomes import|simulate`, POST /outcomes) with
-- INSERT ... ON CONFLICT DO UPDATE ... WHERE excluded.observed_at >= outcomes.observed_at, so a re-import
-- of the same file changes nothing and an older observation never replaces a newer one.
CREATE TABLE IF NOT EXISTS outcomes (
    client_id   INTEGER PRIMARY KEY,
    defaulted   INTEGER NOT NULL CHECK (defaulted IN (0, 1)),
    observed_at REAL    NOT NULL,          -- unix seconds UTC; a date alone means the end of that day
    source      TEXT    NOT NULL,          -- 'import:<file name>', 'api:<role>', 'simulate'
    recorded_at REAL    NOT NULL           -- unix seconds UTC when this row was last written
);
-- Realised performance joins each outcome with the client's latest logged decision before it, and fairness
-- takes each client's latest decision: both read this covering index only (client order, a few dozen bytes
-- an entry), never the log rows with their 1.7 kB feature vectors (1,000,000 rows: 17 s -> well under 1 s).
CREATE INDEX IF NOT EXISTS prediction_log_client_ts
    ON prediction_log (client_id, ts, decision, probability, model_id);
