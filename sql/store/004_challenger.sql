-- Store migration 004: a challenger in shadow (issue 19 item 4). When the serving folder has a challenger
-- (app/scoring/layout.py), the API scores every request with both models, decides with the champion only
-- (prediction_log.model_id, probability, decision), and writes the challenger's score of the same features in
-- the SAME row. NULL in both columns: no challenger was installed when that score was served.
-- Written by app/store/predlog.py; compared by app/monitoring/performance.py (`credit performance`).
ALTER TABLE prediction_log ADD COLUMN challenger_score REAL;
ALTER TABLE prediction_log ADD COLUMN challenger_model_id TEXT;
-- The challenger comparison reads only the shadow rows, from this partial covering index (never the rows with
-- their feature vectors): latest shadow decision per client before its outcome, and the score distributions.
CREATE INDEX IF NOT EXISTS prediction_log_shadow
    ON prediction_log (client_id, ts, decision, probability, model_id, challenger_score, challenger_model_id)
    WHERE challenger_score IS NOT NULL;
