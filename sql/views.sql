-- Views over the scoring functions of app/scoring/native/score_ext.c.
-- app.scoring.db.connect(db, model_dir) runs this file on every connection that loaded the model. The views
-- are TEMP (per connection) because the functions exist only on such connections, and because
-- score() and decision() are SQLITE_DIRECTONLY: allowed in TEMP views, refused in views or triggers
-- stored in the database file (an untrusted file's schema cannot make them run).
--
-- client_scores gives exactly score(client_id) for every client, read from the extension's `scores` table:
-- it scans main.features in client_id order and scores blocks of rows with the compiled batch engine
-- (bit-identical to score(), several times cheaper a row on a full scan); `WHERE client_id = ?` (and
-- ranges of client_id) are pushed down to a primary-key seek.

CREATE TEMP VIEW IF NOT EXISTS client_scores(client_id, probability, decision) AS
SELECT client_id, probability, decision FROM scores;

-- One row: the whole portfolio under the model this connection loaded.
CREATE TEMP VIEW IF NOT EXISTS portfolio_summary(
    model_id, threshold, clients, accepted, refused, refusal_rate, mean_probability, min_probability,
    max_probability
) AS
SELECT model_id(),
       model_threshold(),
       count(*),
       coalesce(sum(decision = 'accept'), 0),
       coalesce(sum(decision = 'refuse'), 0),
       avg(decision = 'refuse'),
       avg(probability),
       min(probability),
       max(probability)
FROM client_scores;

-- Clients per probability decile band [lower, upper), with the share of the portfolio.
CREATE TEMP VIEW IF NOT EXISTS score_bands(band, lower, upper, clients, share, refused) AS
SELECT band,
       band / 10.0,
       (band + 1) / 10.0,
       count(*),
       count(*) * 1.0 / sum(count(*)) OVER (),
       sum(decision = 'refuse')
FROM (SELECT min(CAST(probability * 10 AS INTEGER), 9) AS band, decision FROM client_scores)
GROUP BY band;
