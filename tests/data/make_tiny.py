"""Writes tests/data/tiny/*.csv: four hand-made Home Credit clients whose feature values are
checked by hand in tests/test_features.py. Run it again only to change the data:
    .venv/bin/python tests/data/make_tiny.py
Cells not given here are empty (missing), except FLAG_DOCUMENT_* which default to 0.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("tiny")
SCHEMA = json.loads((ROOT / "app" / "data" / "kaggle_schema.json").read_text())

APP_DEFAULTS = {f"FLAG_DOCUMENT_{i}": 0 for i in range(2, 22)}
ROWS: dict[str, list[dict]] = {
    "application_train.csv": [
        # credit/income 2.5, annuity/income 0.125, goods/credit 0.8, employed/birth 0.2, income/person 50,000
        dict(
            SK_ID_CURR=100001,
            TARGET=0,
            NAME_CONTRACT_TYPE="Cash loans",
            CODE_GENDER="F",
            FLAG_OWN_CAR="N",
            FLAG_OWN_REALTY="Y",
            CNT_CHILDREN=0,
            AMT_INCOME_TOTAL=100000.0,
            AMT_CREDIT=250000.0,
            AMT_ANNUITY=12500.0,
            AMT_GOODS_PRICE=200000.0,
            NAME_INCOME_TYPE="Working",
            NAME_EDUCATION_TYPE="Higher education",
            NAME_FAMILY_STATUS="Married",
            DAYS_BIRTH=-10000,
            DAYS_EMPLOYED=-2000,
            CNT_FAM_MEMBERS=2.0,
            OCCUPATION_TYPE="Managers",
            ORGANIZATION_TYPE="Business Entity Type 3",
            EXT_SOURCE_2=0.5,
            EXT_SOURCE_3=0.7,
            FLAG_DOCUMENT_3=1,
            FLAG_DOCUMENT_8=1,
            WEEKDAY_APPR_PROCESS_START="WEDNESDAY",
        ),
        # pensioner: DAYS_EMPLOYED = 365243 placeholder; gender XNA
        dict(
            SK_ID_CURR=100002,
            TARGET=1,
            NAME_CONTRACT_TYPE="Revolving loans",
            CODE_GENDER="XNA",
            FLAG_OWN_CAR="Y",
            FLAG_OWN_REALTY="N",
            CNT_CHILDREN=1,
            AMT_INCOME_TOTAL=50000.0,
            AMT_CREDIT=100000.0,
            AMT_ANNUITY=5000.0,
            NAME_INCOME_TYPE="Pensioner",
            DAYS_BIRTH=-25000,
            DAYS_EMPLOYED=365243,
            CNT_FAM_MEMBERS=3.0,
            ORGANIZATION_TYPE="XNA",
            EXT_SOURCE_1=0.2,
            EXT_SOURCE_2=0.4,
            EXT_SOURCE_3=0.9,
        ),
        # no history at all
        dict(
            SK_ID_CURR=100003,
            TARGET=0,
            NAME_CONTRACT_TYPE="Cash loans",
            CODE_GENDER="M",
            FLAG_OWN_CAR="N",
            FLAG_OWN_REALTY="N",
            CNT_CHILDREN=0,
            AMT_INCOME_TOTAL=80000.0,
            AMT_CREDIT=160000.0,
            DAYS_BIRTH=-12000,
            DAYS_EMPLOYED=-100,
        ),
    ],
    "application_test.csv": [
        dict(
            SK_ID_CURR=100004,
            NAME_CONTRACT_TYPE="Cash loans",
            CODE_GENDER="F",
            FLAG_OWN_CAR="Y",
            FLAG_OWN_REALTY="Y",
            CNT_CHILDREN=2,
            AMT_INCOME_TOTAL=90000.0,
            AMT_CREDIT=90000.0,
            DAYS_BIRTH=-15000,
            DAYS_EMPLOYED=-3000,
        ),
    ],
    "bureau.csv": [
        dict(
            SK_ID_CURR=100001,
            SK_ID_BUREAU=5001,
            CREDIT_ACTIVE="Active",
            CREDIT_CURRENCY="currency 1",
            DAYS_CREDIT=-400,
            CREDIT_DAY_OVERDUE=0,
            CNT_CREDIT_PROLONG=0,
            AMT_CREDIT_SUM=1000.0,
            AMT_CREDIT_SUM_DEBT=400.0,
            CREDIT_TYPE="Consumer credit",
            DAYS_CREDIT_UPDATE=-10,
        ),
        dict(
            SK_ID_CURR=100001,
            SK_ID_BUREAU=5002,
            CREDIT_ACTIVE="Closed",
            CREDIT_CURRENCY="currency 1",
            DAYS_CREDIT=-800,
            CREDIT_DAY_OVERDUE=0,
            CNT_CREDIT_PROLONG=1,
            AMT_CREDIT_SUM=3000.0,
            AMT_CREDIT_SUM_DEBT=0.0,
            CREDIT_TYPE="Credit card",
            DAYS_CREDIT_UPDATE=-300,
        ),
    ],
    "bureau_balance.csv": [
        # 5001: 4 months, one late ('1'); 5002: 2 months, none late -> 1 late month out of 6
        dict(SK_ID_BUREAU=5001, MONTHS_BALANCE=0, STATUS="0"),
        dict(SK_ID_BUREAU=5001, MONTHS_BALANCE=-1, STATUS="1"),
        dict(SK_ID_BUREAU=5001, MONTHS_BALANCE=-2, STATUS="0"),
        dict(SK_ID_BUREAU=5001, MONTHS_BALANCE=-3, STATUS="C"),
        dict(SK_ID_BUREAU=5002, MONTHS_BALANCE=-10, STATUS="X"),
        dict(SK_ID_BUREAU=5002, MONTHS_BALANCE=-11, STATUS="0"),
    ],
    "previous_application.csv": [
        dict(
            SK_ID_PREV=9001,
            SK_ID_CURR=100001,
            NAME_CONTRACT_TYPE="Consumer loans",
            AMT_APPLICATION=1000.0,
            AMT_CREDIT=800.0,
            NAME_CONTRACT_STATUS="Approved",
            DAYS_DECISION=-100,
            HOUR_APPR_PROCESS_START=10,
            NFLAG_LAST_APPL_IN_DAY=1,
            SELLERPLACE_AREA=5,
            CODE_REJECT_REASON="XAP",
            DAYS_FIRST_DRAWING=365243.0,
        ),
        dict(
            SK_ID_PREV=9002,
            SK_ID_CURR=100001,
            NAME_CONTRACT_TYPE="Cash loans",
            AMT_APPLICATION=2000.0,
            AMT_CREDIT=2000.0,
            NAME_CONTRACT_STATUS="Refused",
            DAYS_DECISION=-50,
            HOUR_APPR_PROCESS_START=11,
            NFLAG_LAST_APPL_IN_DAY=1,
            SELLERPLACE_AREA=-1,
            CODE_REJECT_REASON="HC",
        ),
        dict(
            SK_ID_PREV=9003,
            SK_ID_CURR=100002,
            NAME_CONTRACT_TYPE="Revolving loans",
            AMT_APPLICATION=0.0,
            AMT_CREDIT=0.0,
            NAME_CONTRACT_STATUS="Approved",
            DAYS_DECISION=-300,
            HOUR_APPR_PROCESS_START=9,
            NFLAG_LAST_APPL_IN_DAY=1,
            SELLERPLACE_AREA=1,
            CODE_REJECT_REASON="XAP",
            DAYS_FIRST_DRAWING=-250.0,
        ),
    ],
    "POS_CASH_balance.csv": [
        dict(
            SK_ID_PREV=9001,
            SK_ID_CURR=100001,
            MONTHS_BALANCE=-2,
            CNT_INSTALMENT=12.0,
            CNT_INSTALMENT_FUTURE=10.0,
            NAME_CONTRACT_STATUS="Active",
            SK_DPD=0,
            SK_DPD_DEF=0,
        ),
        dict(
            SK_ID_PREV=9001,
            SK_ID_CURR=100001,
            MONTHS_BALANCE=-1,
            CNT_INSTALMENT=12.0,
            CNT_INSTALMENT_FUTURE=9.0,
            NAME_CONTRACT_STATUS="Active",
            SK_DPD=3,
            SK_DPD_DEF=0,
        ),
    ],
    "installments_payments.csv": [
        # on time (2 days early), then 5 days late and half paid
        dict(
            SK_ID_PREV=9001,
            SK_ID_CURR=100001,
            NUM_INSTALMENT_VERSION=1.0,
            NUM_INSTALMENT_NUMBER=1,
            DAYS_INSTALMENT=-60.0,
            DAYS_ENTRY_PAYMENT=-62.0,
            AMT_INSTALMENT=100.0,
            AMT_PAYMENT=100.0,
        ),
        dict(
            SK_ID_PREV=9001,
            SK_ID_CURR=100001,
            NUM_INSTALMENT_VERSION=1.0,
            NUM_INSTALMENT_NUMBER=2,
            DAYS_INSTALMENT=-30.0,
            DAYS_ENTRY_PAYMENT=-25.0,
            AMT_INSTALMENT=100.0,
            AMT_PAYMENT=50.0,
        ),
    ],
    "credit_card_balance.csv": [
        # balance/limit 0.5, then a zero limit (ratio undefined -> NULL)
        dict(
            SK_ID_PREV=9003,
            SK_ID_CURR=100002,
            MONTHS_BALANCE=-2,
            AMT_BALANCE=500.0,
            AMT_CREDIT_LIMIT_ACTUAL=1000,
            AMT_DRAWINGS_CURRENT=200.0,
            AMT_PAYMENT_TOTAL_CURRENT=0.0,
            AMT_INST_MIN_REGULARITY=50.0,
            CNT_DRAWINGS_CURRENT=2,
            NAME_CONTRACT_STATUS="Active",
            SK_DPD=0,
            SK_DPD_DEF=0,
        ),
        dict(
            SK_ID_PREV=9003,
            SK_ID_CURR=100002,
            MONTHS_BALANCE=-1,
            AMT_BALANCE=1000.0,
            AMT_CREDIT_LIMIT_ACTUAL=0,
            AMT_DRAWINGS_CURRENT=0.0,
            AMT_PAYMENT_TOTAL_CURRENT=100.0,
            AMT_INST_MIN_REGULARITY=50.0,
            CNT_DRAWINGS_CURRENT=0,
            NAME_CONTRACT_STATUS="Active",
            SK_DPD=7,
            SK_DPD_DEF=7,
        ),
    ],
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, cols in SCHEMA.items():
        names = [c for c, _ in cols]
        with open(OUT / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(names)
            for row in ROWS[name]:
                unknown = set(row) - set(names)
                assert not unknown, (name, unknown)
                base = APP_DEFAULTS if name.startswith("application_") else {}
                w.writerow([{**base, **row}.get(c, "") for c in names])


if __name__ == "__main__":
    main()
