-- Corrections of observed outcomes (`credit outcomes import --replace`, POST /outcomes with "replace": true):
-- one row each time a stored outcome was replaced by another whatever their dates, with both values, so a
-- correction is never silent and can be audited or undone. Written by app/monitoring/outcomes.py in the
-- same transaction as the outcome it replaces.
CREATE TABLE IF NOT EXISTS outcome_corrections (
    id              INTEGER PRIMARY KEY,
    client_id       INTEGER NOT NULL,
    old_defaulted   INTEGER NOT NULL,
    old_observed_at REAL    NOT NULL,
    old_source      TEXT    NOT NULL,
    new_defaulted   INTEGER NOT NULL,
    new_observed_at REAL    NOT NULL,
    source          TEXT    NOT NULL,   -- 'import:<file name> --replace', 'api:<role> replace'
    corrected_at    REAL    NOT NULL    -- unix seconds UTC
);
CREATE INDEX IF NOT EXISTS outcome_corrections_client ON outcome_corrections (client_id, corrected_at);
