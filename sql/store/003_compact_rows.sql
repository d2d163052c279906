-- Store migration 003 (issue 20): smaller log rows.
-- A score of a stored client (GET /clients/{id}/score, a batch of client ids) is logged with the data version it
-- was read from and an empty `features`; the vector itself is kept once per (data version, client) in
-- logged_vectors, written in the same transaction as the log row (INSERT OR IGNORE: the first score of a client
-- in a data version writes it, the next ones only look it up). Applicants and what-ifs keep the full vector in
-- the row (data_version NULL). Readers take coalesce(logged_vectors.x, prediction_log.features): the exact vector
-- that was scored, even after `credit ingest` replaced the data file (a new data version gets its own vectors).
-- Rows written before this migration have data_version NULL and their vector in `features`: unchanged.
ALTER TABLE prediction_log ADD COLUMN data_version TEXT;  -- NULL: `features` holds the scored vector
CREATE TABLE IF NOT EXISTS logged_vectors (
    id           INTEGER PRIMARY KEY,
    data_version TEXT    NOT NULL,         -- app.store.predlog.data_version of the data file the vector came from
    client_id    INTEGER NOT NULL,
    x            BLOB    NOT NULL,         -- little-endian float32 vector, as stored in features.x
    UNIQUE (data_version, client_id)
);
