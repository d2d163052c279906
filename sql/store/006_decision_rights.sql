-- Store migration 005 (issue 32): after an automated decision, the client's rights. Written by app/rights/records.py.
-- The automated decision itself stays the prediction_log row (never changed); what people did about it is kept
-- here beside it, each with who, when and why, in the operational store that re-imports never touch.

-- Every decision letter issued: who asked for it, when, for which logged decision, and what it said (the letter's
-- facts as JSON, so a letter can be shown again exactly as it was issued).
CREATE TABLE IF NOT EXISTS letters (
    id               INTEGER PRIMARY KEY,
    issued_at        REAL    NOT NULL,         -- unix seconds UTC
    issued_by        TEXT    NOT NULL,         -- the person (CLI: --by or the login name; API: the `by` parameter)
    role             TEXT    NOT NULL,         -- officer | risk | admin
    channel          TEXT    NOT NULL,         -- 'cli' | 'api'
    request_id       TEXT    NOT NULL,         -- the prediction_log row the letter is about
    client_id        INTEGER,
    lang             TEXT    NOT NULL CHECK (lang IN ('fr', 'en')),
    format           TEXT    NOT NULL CHECK (format IN ('html', 'pdf', 'json')),
    model_id         TEXT    NOT NULL,
    decision         TEXT    NOT NULL,         -- the decision in force the letter states (after override / review)
    content          TEXT    NOT NULL,         -- JSON: the letter's facts as issued
    content_sha256   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS letters_client ON letters (client_id, issued_at);

-- The principal reasons and the counterfactual of a logged decision, computed once from the logged vector with the
-- model that served it (found by its id among the serving folder's bundles), then frozen: a later letter states the
-- same reasons even once that model's files are gone.
CREATE TABLE IF NOT EXISTS decision_explanations (
    request_id       TEXT    PRIMARY KEY,
    model_id         TEXT    NOT NULL,
    computed_at      REAL    NOT NULL,
    threshold        REAL    NOT NULL,         -- the serving model's threshold (the log row has the decision)
    reasons          TEXT    NOT NULL,         -- JSON: [{feature, value, shap, typical, unit}], language-neutral
    data_used        TEXT    NOT NULL,         -- JSON: [{feature, value, unit}] shown to the client
    counterfactual   TEXT                      -- JSON (app.rights.counterfactual.Result), NULL when not computed
);

-- Human review (Consumer Credit Directive (EU) 2023/2225 Art. 18, GDPR Art. 22): an officer records the client's
-- request with their point of view; a person with the risk role decides it, with a reason from a closed list.
CREATE TABLE IF NOT EXISTS reviews (
    id               INTEGER PRIMARY KEY,
    request_id       TEXT    NOT NULL,         -- the logged decision under review
    client_id        INTEGER,
    requested_at     REAL    NOT NULL,
    requested_by     TEXT    NOT NULL,
    requested_role   TEXT    NOT NULL,
    client_view      TEXT    NOT NULL,         -- the client's point of view, as they put it
    decided_at       REAL,
    decided_by       TEXT,
    decided_role     TEXT,
    outcome          TEXT    CHECK (outcome IN ('uphold', 'overturn')),
    reason_code      TEXT,                     -- app.rights.records.REVIEW_REASONS
    reason_text      TEXT,
    decision_before  TEXT    NOT NULL,         -- the decision in force when the review was requested
    decision_after   TEXT,                     -- the decision in force after it
    CHECK ((decided_at IS NULL) = (outcome IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS reviews_one_open ON reviews (request_id) WHERE decided_at IS NULL;
CREATE INDEX IF NOT EXISTS reviews_client ON reviews (client_id, requested_at);

-- Overrides: an officer changes the decision when it is made, with a reason; granting credit the model refused
-- above CREDIT_OVERRIDE_FOUR_EYES needs a second person with the risk role (status 'pending' until then).
CREATE TABLE IF NOT EXISTS overrides (
    id               INTEGER PRIMARY KEY,
    request_id       TEXT    NOT NULL UNIQUE,  -- one override per logged decision
    client_id        INTEGER,
    created_at       REAL    NOT NULL,
    officer          TEXT    NOT NULL,
    officer_role     TEXT    NOT NULL,
    model_decision   TEXT    NOT NULL,
    probability      REAL    NOT NULL,
    decision         TEXT    NOT NULL CHECK (decision IN ('accept', 'refuse')),
    reason_code      TEXT    NOT NULL,         -- app.rights.records.OVERRIDE_REASONS
    reason_text      TEXT    NOT NULL,
    needs_second     INTEGER NOT NULL CHECK (needs_second IN (0, 1)),
    status           TEXT    NOT NULL CHECK (status IN ('in force', 'pending', 'rejected')),
    second_by        TEXT,
    second_role      TEXT,
    second_at        REAL,
    second_text      TEXT
);
CREATE INDEX IF NOT EXISTS overrides_client ON overrides (client_id, created_at);

-- The audit trail: one row per act (letter issued, review requested / decided, override recorded / approved /
-- rejected, export), append-only (the triggers refuse UPDATE and DELETE).
CREATE TABLE IF NOT EXISTS rights_events (
    id               INTEGER PRIMARY KEY,
    ts               REAL    NOT NULL,
    actor            TEXT    NOT NULL,
    role             TEXT    NOT NULL,
    action           TEXT    NOT NULL,
    request_id       TEXT,
    client_id        INTEGER,
    why              TEXT,
    detail           TEXT                      -- JSON
);
CREATE INDEX IF NOT EXISTS rights_events_client ON rights_events (client_id, ts);
CREATE TRIGGER IF NOT EXISTS rights_events_no_update BEFORE UPDATE ON rights_events
BEGIN SELECT RAISE(ABORT, 'rights_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS rights_events_no_delete BEFORE DELETE ON rights_events
BEGIN SELECT RAISE(ABORT, 'rights_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS letters_no_update BEFORE UPDATE ON letters
BEGIN SELECT RAISE(ABORT, 'letters are kept as issued'); END;
CREATE TRIGGER IF NOT EXISTS letters_no_delete BEFORE DELETE ON letters
BEGIN SELECT RAISE(ABORT, 'letters are kept as issued'); END;
