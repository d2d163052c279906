-- Output tables shared by `credit ingest` (Home Credit) and `credit ingest-csv` (any one-table CSV).
-- The raw tables (application_train, bureau, ...) are created by app/data/ingest.py from
-- app/data/kaggle_schema.json: int64 -> INTEGER, float64 -> REAL, object -> TEXT, columns named as
-- in the CSV. The clients table depends on the source: sql/clients.sql for Home Credit,
-- generated from the CSV's own columns by app/data/ingest_csv.py.

-- One row per client: x = little-endian float32 vector, NaN for missing, 4 * n_features bytes,
-- in the order of feature_names.idx.
CREATE TABLE features (
  client_id INTEGER PRIMARY KEY,
  x BLOB NOT NULL
);

CREATE TABLE feature_names (
  idx INTEGER PRIMARY KEY,  -- 0-based position in x
  name TEXT NOT NULL UNIQUE
);

-- Train clients only; the target is never a feature.
CREATE TABLE labels (
  client_id INTEGER PRIMARY KEY,
  target INTEGER NOT NULL CHECK (target IN (0, 1))
);

-- source ('home-credit' | 'csv:<file>'), data_fingerprint, ingested_at, ...
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
