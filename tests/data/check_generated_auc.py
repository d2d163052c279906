"""Check a `credit generate` folder: dtypes vs kaggle_schema.json, rows per client, marginals, and
how much signal the tables carry (LightGBM 5-fold CV ROC AUC, application only vs all tables).

    .venv/bin/credit generate --clients 20000 --out /tmp/gen --seed 42
    .venv/bin/python tests/data/check_generated_auc.py /tmp/gen
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[2]


def kind(dtype) -> str:
    return "object" if str(dtype) in ("str", "string", "object") else str(dtype)


def cv_auc(x: pd.DataFrame, y: pd.Series) -> float:
    oof = np.zeros(len(y))
    for fit, val in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        model = lgb.LGBMClassifier(
            n_estimators=400, learning_rate=0.03, num_leaves=15, min_child_samples=50, subsample=0.8,
            subsample_freq=1, colsample_bytree=0.7, verbose=-1, n_jobs=1,
        )  # fmt: skip
        model.fit(x.iloc[fit], y.iloc[fit])
        oof[val] = model.predict_proba(x.iloc[val])[:, 1]
    return roc_auc_score(y, oof)


def main(folder: Path) -> None:
    schema = json.loads((ROOT / "app" / "data" / "kaggle_schema.json").read_text())
    df = {name: pd.read_csv(folder / name) for name in schema}
    for name, cols in schema.items():
        got = [[c, kind(t)] for c, t in df[name].dtypes.items()]
        print(f"{name:28s} rows {len(df[name]):>10,}  dtypes {'OK' if got == cols else 'MISMATCH'}")
    train, test = df["application_train.csv"], df["application_test.csv"]
    n = len(train) + len(test)
    for name in list(schema)[2:]:
        print(f"{name:28s} rows per client {len(df[name]) / n:6.2f}")
    print(f"TARGET rate {train.TARGET.mean():.4f}")
    print(f"DAYS_EMPLOYED 365243 share {(train.DAYS_EMPLOYED == 365243).mean():.3f}")
    print(f"median income {train.AMT_INCOME_TOTAL.median():,.0f}  credit {train.AMT_CREDIT.median():,.0f}")

    app = train.copy()
    for c in app.columns:
        if kind(app[c].dtype) == "object":
            app[c] = app[c].astype("category")
    app = app.set_index("SK_ID_CURR")
    bureau, prev = df["bureau.csv"], df["previous_application.csv"]
    aggs = [
        bureau.assign(active=bureau.CREDIT_ACTIVE == "Active")
        .groupby("SK_ID_CURR")
        .agg(
            b_n=("SK_ID_BUREAU", "size"),
            b_overdue_max=("CREDIT_DAY_OVERDUE", "max"),
            b_debt=("AMT_CREDIT_SUM_DEBT", "sum"),
            b_max_overdue=("AMT_CREDIT_MAX_OVERDUE", "mean"),
            b_active=("active", "mean"),
            b_sum_overdue=("AMT_CREDIT_SUM_OVERDUE", "sum"),
        ),  # fmt: skip
    ]
    bb = df["bureau_balance.csv"].merge(bureau[["SK_ID_BUREAU", "SK_ID_CURR"]])
    bb["late"] = bb.STATUS.astype(str).isin(list("12345"))
    aggs.append(bb.groupby("SK_ID_CURR").agg(bb_late=("late", "mean"), bb_n=("late", "size")))
    prev["refused"] = prev.NAME_CONTRACT_STATUS == "Refused"
    aggs.append(prev.groupby("SK_ID_CURR").agg(p_n=("SK_ID_PREV", "size"), p_refused=("refused", "mean")))
    inst = df["installments_payments.csv"]
    inst["dpd"] = (inst.DAYS_ENTRY_PAYMENT - inst.DAYS_INSTALMENT).clip(lower=0)
    inst["short"] = inst.AMT_INSTALMENT - inst.AMT_PAYMENT
    aggs.append(
        inst.groupby("SK_ID_CURR").agg(i_dpd=("dpd", "mean"), i_dpd_max=("dpd", "max"), i_short=("short", "mean"))
    )
    pos, cc = df["POS_CASH_balance.csv"], df["credit_card_balance.csv"]
    aggs.append(pos.groupby("SK_ID_CURR").agg(pos_dpd=("SK_DPD", "mean"), pos_dpd_max=("SK_DPD", "max")))
    aggs.append(cc.groupby("SK_ID_CURR").agg(cc_dpd=("SK_DPD", "mean"), cc_balance=("AMT_BALANCE", "mean")))
    y = app.pop("TARGET")
    full = app.join(aggs)
    print(f"LightGBM 5-fold AUC, application_train only: {cv_auc(app, y):.4f}")
    print(f"LightGBM 5-fold AUC, + aggregates of all tables: {cv_auc(full, y):.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
