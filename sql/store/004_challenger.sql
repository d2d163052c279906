-- Store migration 004: a challenger in shadow (issue 19 item 4). When the serving folder has a challenger
-- (app/scoring/layout.py), the API scores every request with both models, decides with the champion only
-- (prediction_log.model_id, probability, decision), and writes the challenger's score of the same features in
-- the SAME row. NULL in both columns: no challenger was installed when that score was served.
-- Written by app/store/predlog.py; compared by app/monitoring/performance.py (`credit performance`).
ALTER TABLE prediction_log ADD COLUMN challenger_score REAL;
ALTER TABLE prediction_log ADD COLUMN challenger_model_id TEXT;
