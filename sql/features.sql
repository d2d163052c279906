-- The feature matrix: one row per client (train and test). Column 1 is client_id; every other
-- column, in this order, is a feature (feature_names.idx = column position - 1).
-- USING (client_id) makes SELECT * keep a single client_id column.
SELECT *
FROM f_application
LEFT JOIN f_bureau USING (client_id)
LEFT JOIN f_previous USING (client_id)
LEFT JOIN f_pos_cash USING (client_id)
LEFT JOIN f_installments USING (client_id)
LEFT JOIN f_credit_card USING (client_id)
