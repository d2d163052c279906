"""The synthetic Home Credit generator: Kaggle layout, keys, determinism, plausible values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from app.cli.data import generate_command
from app.data.synthetic import FILES, SCHEMA_PATH, generate, load_schema

N_CLIENTS = 1500
SEED = 3
KAGGLE_WIDTHS = {
    "application_train.csv": 122,
    "application_test.csv": 121,
    "bureau.csv": 17,
    "bureau_balance.csv": 3,
    "previous_application.csv": 37,
    "POS_CASH_balance.csv": 8,
    "installments_payments.csv": 8,
    "credit_card_balance.csv": 23,
}
# Kaggle rows per client (full files / 307,511 clients), checked within a loose band
KAGGLE_ROWS_PER_CLIENT = {
    "bureau.csv": 5.6,
    "bureau_balance.csv": 88.8,
    "previous_application.csv": 5.4,
    "POS_CASH_balance.csv": 32.5,
    "installments_payments.csv": 44.2,
    "credit_card_balance.csv": 12.5,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("generated")
    rows = generate(out, n_clients=N_CLIENTS, seed=SEED, progress=False)
    return out, rows


@pytest.fixture(scope="module")
def frames(data) -> dict[str, pd.DataFrame]:
    out, _rows = data
    return {name: pd.read_csv(out / name) for name in FILES}


def _kind(dtype) -> str:
    # pandas >= 3 infers text columns as "str"; the schema calls them "object" as older pandas did
    name = str(dtype)
    return "object" if name in ("object", "str", "string") else name


def test_schema_file_has_the_kaggle_layout():
    raw = json.loads(SCHEMA_PATH.read_text())
    assert list(raw) == list(FILES)
    for name, cols in raw.items():
        assert len(cols) == KAGGLE_WIDTHS[name], name
        assert len({c for c, _ in cols}) == len(cols), f"duplicate column in {name}"
        assert {d for _, d in cols} <= {"int64", "float64", "object"}
    train = raw["application_train.csv"]
    assert train[:2] == [["SK_ID_CURR", "int64"], ["TARGET", "int64"]]
    assert [c for c in train if c[0] != "TARGET"] == raw["application_test.csv"]
    kinds = [d for _, d in train]
    assert (kinds.count("float64"), kinds.count("int64"), kinds.count("object")) == (65, 41, 16)


def test_columns_and_dtypes_match_schema(data, frames):
    schema = load_schema()
    for name in FILES:
        got = [(c, _kind(t)) for c, t in frames[name].dtypes.items()]
        assert got == schema[name], name


def test_returned_counts_match_files(data, frames):
    _out, rows = data
    assert rows == {name: len(frames[name]) for name in FILES}
    assert rows["application_train.csv"] + rows["application_test.csv"] == N_CLIENTS
    assert all(rows[name] > 0 for name in FILES)


def test_missing_values_are_empty_fields(data):
    out, _rows = data
    text = (out / "application_train.csv").read_text()
    assert ",," in text
    assert ",nan" not in text.lower() and ",none" not in text.lower()
    header = text.split("\n", 1)[0]
    assert header.startswith("SK_ID_CURR,TARGET,NAME_CONTRACT_TYPE,")


def test_keys_are_consistent(frames):
    train, test = frames["application_train.csv"], frames["application_test.csv"]
    ids = np.sort(np.concatenate([train.SK_ID_CURR.to_numpy(), test.SK_ID_CURR.to_numpy()]))
    assert ids[0] == 100002
    assert (ids == 100002 + np.arange(N_CLIENTS)).all()
    clients = set(ids.tolist())
    bureau, prev = frames["bureau.csv"], frames["previous_application.csv"]
    assert bureau.SK_ID_BUREAU.is_unique
    assert set(bureau.SK_ID_CURR) <= clients
    assert set(frames["bureau_balance.csv"].SK_ID_BUREAU) <= set(bureau.SK_ID_BUREAU)
    assert prev.SK_ID_PREV.is_unique
    assert set(prev.SK_ID_CURR) <= clients
    owner = prev.set_index("SK_ID_PREV").SK_ID_CURR
    for name in ("POS_CASH_balance.csv", "installments_payments.csv", "credit_card_balance.csv"):
        child = frames[name]
        assert child.SK_ID_PREV.isin(owner.index).all(), name
        assert (owner.loc[child.SK_ID_PREV].to_numpy() == child.SK_ID_CURR.to_numpy()).all(), name
    # monthly tables: one row per (loan, month)
    for name in ("bureau_balance.csv",):
        assert not frames[name].duplicated(["SK_ID_BUREAU", "MONTHS_BALANCE"]).any()
    for name in ("POS_CASH_balance.csv", "credit_card_balance.csv"):
        assert not frames[name].duplicated(["SK_ID_PREV", "MONTHS_BALANCE"]).any(), name


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    rows_a = generate(a, n_clients=300, seed=11, progress=False)
    rows_b = generate(b, n_clients=300, seed=11, progress=False)
    generate(c, n_clients=300, seed=12, progress=False)
    assert rows_a == rows_b
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "application_train.csv").read_bytes() != (c / "application_train.csv").read_bytes()
    assert (a / "installments_payments.csv").read_bytes() != (c / "installments_payments.csv").read_bytes()


def test_target_rate_and_split(frames):
    train, test = frames["application_train.csv"], frames["application_test.csv"]
    assert set(train.TARGET.unique()) == {0, 1}
    assert 0.05 <= train.TARGET.mean() <= 0.115
    assert 0.10 <= len(test) / N_CLIENTS <= 0.20


def test_application_marginals(frames):
    app = pd.concat([frames["application_train.csv"], frames["application_test.csv"]])
    anomaly = app.DAYS_EMPLOYED == 365243
    assert 0.10 <= anomaly.mean() <= 0.28
    assert (app.DAYS_EMPLOYED[~anomaly] <= 0).all()
    assert (app.ORGANIZATION_TYPE[anomaly] == "XNA").all()
    assert app.DAYS_BIRTH.between(-25229, -7489).all()
    assert 110_000 <= app.AMT_INCOME_TOTAL.median() <= 190_000
    assert 400_000 <= app.AMT_CREDIT.median() <= 650_000
    for col, share in (("EXT_SOURCE_1", 0.564), ("EXT_SOURCE_2", 0.002), ("EXT_SOURCE_3", 0.198)):
        assert abs(app[col].isna().mean() - share) < 0.05, col
        assert app[col].dropna().between(0, 1, inclusive="neither").all(), col
    assert 0.45 <= app.APARTMENTS_AVG.isna().mean() <= 0.60
    assert 0.60 <= app.COMMONAREA_MEDI.isna().mean() <= 0.78
    assert set(app.CODE_GENDER.unique()) <= {"M", "F", "XNA"}
    assert set(app.NAME_CONTRACT_TYPE.unique()) == {"Cash loans", "Revolving loans"}
    assert 0.60 <= app.FLAG_DOCUMENT_3.mean() <= 0.80


def test_child_tables_values(frames):
    bureau = frames["bureau.csv"]
    assert {"Active", "Closed"} <= set(bureau.CREDIT_ACTIVE) <= {"Active", "Closed", "Sold", "Bad debt"}
    assert (bureau.CREDIT_DAY_OVERDUE >= 0).all() and (bureau.CREDIT_DAY_OVERDUE > 0).any()
    assert (bureau.DAYS_CREDIT < 0).all()
    assert set(frames["bureau_balance.csv"].STATUS.astype(str)) <= set("012345CX")
    assert (frames["bureau_balance.csv"].MONTHS_BALANCE <= 0).all()
    prev = frames["previous_application.csv"]
    assert set(prev.NAME_CONTRACT_STATUS) == {"Approved", "Refused", "Canceled", "Unused offer"}
    inst = frames["installments_payments.csv"]
    late = inst.DAYS_ENTRY_PAYMENT > inst.DAYS_INSTALMENT
    assert 0.02 <= late.mean() <= 0.20
    assert (inst.AMT_PAYMENT < inst.AMT_INSTALMENT).any()
    for name in ("POS_CASH_balance.csv", "credit_card_balance.csv"):
        dpd = frames[name].SK_DPD
        assert (dpd >= 0).all() and (dpd > 0).any(), name


def test_child_rows_per_client_near_kaggle(data):
    _out, rows = data
    for name, mean in KAGGLE_ROWS_PER_CLIENT.items():
        per_client = rows[name] / N_CLIENTS
        assert 0.7 * mean <= per_client <= 1.3 * mean, (name, per_client)


def test_target_follows_application_and_behaviour(frames):
    from sklearn.metrics import roc_auc_score

    train = frames["application_train.csv"]
    y = train.TARGET.to_numpy()
    ext = train.EXT_SOURCE_2.fillna(train.EXT_SOURCE_2.median())
    assert roc_auc_score(y, -ext) > 0.6
    inst = frames["installments_payments.csv"]
    late = (inst.DAYS_ENTRY_PAYMENT - inst.DAYS_INSTALMENT).clip(lower=0).groupby(inst.SK_ID_CURR).mean()
    late = train.SK_ID_CURR.map(late).fillna(0.0)
    assert roc_auc_score(y, late) > 0.55


def test_cli_prints_rows(tmp_path):
    out = tmp_path / "raw"
    result = CliRunner().invoke(
        generate_command, ["--clients", "200", "--out", str(out), "--seed", "5", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    for name in FILES:
        assert name in result.output
        assert (out / name).exists()
    assert len(pd.read_csv(out / "application_train.csv")) + len(pd.read_csv(out / "application_test.csv")) == 200


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, n_clients=0, seed=1, progress=False)
    with pytest.raises(ValueError):
        generate(tmp_path, n_clients=10, seed=1, test_share=1.0, progress=False)
