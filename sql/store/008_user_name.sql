-- Store migration 005 (issue 29): which person asked for a score, not only which role.
-- The dashboard logs its officers in (ui/accounts.py) and names the logged-in user in the X-Credit-User header of
-- every API call; the API trusts that header only from the dashboard's own keys (app.service.auth) and writes the
-- name here. NULL: a score asked by an API client that named no user, or written before this migration.
ALTER TABLE prediction_log ADD COLUMN user_name TEXT;
