-- Readable columns of each Home Credit client (display, comparison); not used by the model.
DROP TABLE IF EXISTS clients;
CREATE TABLE clients (
  client_id INTEGER PRIMARY KEY,
  split TEXT NOT NULL CHECK (split IN ('train', 'test')),
  gender TEXT,
  age_years REAL,
  income REAL,
  credit REAL,
  annuity REAL,
  goods_price REAL,
  contract_type TEXT,
  education TEXT,
  family_status TEXT,
  occupation TEXT,
  organization TEXT,
  years_employed REAL,  -- NULL when DAYS_EMPLOYED is the 365243 placeholder (pensioners, unemployed)
  ext_source_1 REAL,
  ext_source_2 REAL,
  ext_source_3 REAL,
  children INTEGER,
  own_car TEXT,
  own_realty TEXT,
  income_type TEXT,
  housing_type TEXT
);

INSERT INTO clients
SELECT
  SK_ID_CURR,
  split,
  CODE_GENDER,
  round(-DAYS_BIRTH / 365.25, 1),
  AMT_INCOME_TOTAL,
  AMT_CREDIT,
  AMT_ANNUITY,
  AMT_GOODS_PRICE,
  NAME_CONTRACT_TYPE,
  NAME_EDUCATION_TYPE,
  NAME_FAMILY_STATUS,
  OCCUPATION_TYPE,
  ORGANIZATION_TYPE,
  round(-NULLIF(DAYS_EMPLOYED, 365243) / 365.25, 1),
  EXT_SOURCE_1,
  EXT_SOURCE_2,
  EXT_SOURCE_3,
  CNT_CHILDREN,
  FLAG_OWN_CAR,
  FLAG_OWN_REALTY,
  NAME_INCOME_TYPE,
  NAME_HOUSING_TYPE
FROM application_all;  -- TEMP VIEW: application_train UNION ALL application_test, plus split
