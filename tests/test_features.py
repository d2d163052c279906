"""Feature values checked by hand on tests/data/tiny (four hand-made clients, see make_tiny.py)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import apsw
import numpy as np
import pytest

from app.data.features import build_features, data_fingerprint, load_matrix, vector_from_mapping
from app.data.ingest import ingest

TINY = Path(__file__).parent / "data" / "tiny"


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("tiny") / "tiny.db"
    ingest(TINY, db, progress=False)
    return db


@pytest.fixture(scope="module")
def feats(tiny_db):
    conn = apsw.Connection(str(tiny_db), flags=apsw.SQLITE_OPEN_READONLY)
    ids, X, y, names = load_matrix(conn, labelled_only=False)
    conn.close()
    return {int(i): dict(zip(names, row.tolist(), strict=True)) for i, row in zip(ids, X, strict=True)}


def approx(v: float) -> object:
    return pytest.approx(v, rel=1e-6)


def test_application_ratios(feats):
    a = feats[100001]
    assert a["CREDIT_INCOME_RATIO"] == approx(2.5)
    assert a["ANNUITY_INCOME_RATIO"] == approx(0.125)
    assert a["ANNUITY_CREDIT_RATIO"] == approx(0.05)
    assert a["GOODS_CREDIT_RATIO"] == approx(0.8)
    assert a["EMPLOYED_BIRTH_RATIO"] == approx(0.2)
    assert a["INCOME_PER_PERSON"] == approx(50000)
    assert a["DOCUMENT_COUNT"] == 2
    assert a["AGE_YEARS"] == approx(10000 / 365.25)


def test_days_employed_placeholder_is_missing(feats):
    p = feats[100002]
    assert math.isnan(p["DAYS_EMPLOYED"])
    assert math.isnan(p["EMPLOYED_BIRTH_RATIO"])
    assert p["DAYS_EMPLOYED_PLACEHOLDER"] == 1
    assert feats[100001]["DAYS_EMPLOYED_PLACEHOLDER"] == 0


def test_ext_sources_ignore_missing(feats):
    a, b, c = feats[100001], feats[100002], feats[100003]
    assert a["EXT_SOURCE_MEAN"] == approx(0.6)  # 0.5 and 0.7; EXT_SOURCE_1 missing
    assert a["EXT_SOURCE_MIN"] == approx(0.5)
    assert a["EXT_SOURCE_MAX"] == approx(0.7)
    assert math.isnan(a["EXT_SOURCE_PRODUCT"])
    assert b["EXT_SOURCE_PRODUCT"] == approx(0.2 * 0.4 * 0.9)
    assert b["EXT_SOURCE_MIN"] == approx(0.2)
    assert math.isnan(c["EXT_SOURCE_MEAN"])
    assert c["EXT_SOURCE_MISSING_COUNT"] == 3


def test_categorical_encodings(feats):
    a, b, c = feats[100001], feats[100002], feats[100003]
    assert (a["GENDER_F"], c["GENDER_F"]) == (1, 0)
    assert math.isnan(b["GENDER_F"])  # XNA
    assert (a["OWN_REALTY"], a["OWN_CAR"], b["OWN_CAR"]) == (1, 0, 1)
    assert (a["CONTRACT_REVOLVING"], b["CONTRACT_REVOLVING"]) == (0, 1)
    assert a["EDUCATION_LEVEL"] == 3
    assert a["WEEKDAY_APPR"] == 3
    assert (a["OCCUPATION_MANAGERS"], a["OCCUPATION_MISSING"], b["OCCUPATION_MISSING"]) == (1, 0, 1)
    assert (a["INCOME_TYPE_WORKING"], b["INCOME_TYPE_PENSIONER"]) == (1, 1)
    assert (a["ORGANIZATION_BUSINESS"], b["ORGANIZATION_NONE"]) == (1, 1)


def test_installments_two_payments_one_late(feats):
    a = feats[100001]
    assert a["INST_COUNT"] == 2
    assert a["INST_LATE_SHARE"] == approx(0.5)
    assert a["INST_DPD_MAX"] == 5
    assert a["INST_DPD_MEAN"] == approx(2.5)
    assert a["INST_DBD_MAX"] == 2
    assert a["INST_PAYMENT_RATIO_MEAN"] == approx(0.75)
    assert a["INST_UNDERPAID_SHARE"] == approx(0.5)
    assert a["INST_PAYMENT_DIFF_SUM"] == approx(50)


def test_bureau_and_balance(feats):
    a = feats[100001]
    assert a["BUREAU_COUNT"] == 2
    assert a["BUREAU_ACTIVE_COUNT"] == 1
    assert a["BUREAU_AMT_CREDIT_SUM"] == approx(4000)
    assert a["BUREAU_DEBT_CREDIT_RATIO"] == approx(0.1)
    assert a["BUREAU_ACTIVE_DEBT_CREDIT_RATIO"] == approx(0.4)
    assert a["BUREAU_PROLONG_SUM"] == 1
    assert a["BUREAU_BALANCE_MONTHS"] == 6
    assert a["BUREAU_BALANCE_LATE_SHARE"] == approx(1 / 6)
    assert a["BUREAU_BALANCE_LATE_SHARE_MAX"] == approx(0.25)
    assert a["BUREAU_BALANCE_WORST_STATUS"] == 1


def test_previous_applications(feats):
    a, b = feats[100001], feats[100002]
    assert (a["PREV_COUNT"], a["PREV_APPROVED_COUNT"], a["PREV_REFUSED_COUNT"]) == (2, 1, 1)
    assert a["PREV_REFUSED_SHARE"] == approx(0.5)
    assert a["PREV_APP_CREDIT_RATIO_MEAN"] == approx((1000 / 800 + 1.0) / 2)
    assert a["PREV_REJECT_HC_SHARE"] == approx(0.5)
    assert math.isnan(a["PREV_DAYS_FIRST_DRAWING_MEAN"])  # 365243 -> missing
    assert b["PREV_DAYS_FIRST_DRAWING_MEAN"] == -250
    assert math.isnan(b["PREV_APP_CREDIT_RATIO_MEAN"])  # 0 / 0


def test_pos_cash_and_credit_card(feats):
    a, b = feats[100001], feats[100002]
    assert (a["POS_MONTHS"], a["POS_DPD_MAX"]) == (2, 3)
    assert a["POS_DPD_SHARE"] == approx(0.5)
    assert b["CC_BALANCE_LIMIT_RATIO_MEAN"] == approx(0.5)  # zero limit -> ignored
    assert b["CC_DPD_MAX"] == 7
    assert b["CC_AMT_DRAWINGS_SUM"] == approx(200)


def test_client_without_history_has_nan_aggregates(feats):
    c = feats[100003]
    for name in ("BUREAU_COUNT", "PREV_COUNT", "POS_MONTHS", "INST_LATE_SHARE", "CC_MONTHS"):
        assert math.isnan(c[name]), name


def test_layout(tiny_db):
    conn = apsw.Connection(str(tiny_db), flags=apsw.SQLITE_OPEN_READONLY)
    names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    assert len(names) >= 300
    assert "TARGET" not in names and "SK_ID_CURR" not in names
    assert [r[0] for r in conn.execute("SELECT idx FROM feature_names ORDER BY idx")] == list(range(len(names)))
    for (x,) in conn.execute("SELECT x FROM features"):
        assert isinstance(x, bytes) and len(x) == 4 * len(names)
    assert dict(conn.execute("SELECT client_id, target FROM labels")) == {100001: 0, 100002: 1, 100003: 0}
    splits = dict(conn.execute("SELECT client_id, split FROM clients"))
    assert splits == {100001: "train", 100002: "train", 100003: "train", 100004: "test"}
    row = conn.execute(
        "SELECT gender, age_years, income, credit, years_employed, own_car FROM clients WHERE client_id = 100001"
    ).fetchone()
    assert row == ("F", 27.4, 100000.0, 250000.0, 5.5, "N")
    assert conn.execute("SELECT years_employed FROM clients WHERE client_id = 100002").fetchone() == (None,)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["source"] == "home-credit"
    assert meta["data_fingerprint"] == data_fingerprint(conn)
    assert meta["ingested_at"].startswith("20")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # read-only data: no -wal beside it
    conn.close()


def test_load_matrix(tiny_db):
    conn = apsw.Connection(str(tiny_db), flags=apsw.SQLITE_OPEN_READONLY)
    ids, X, y, names = load_matrix(conn, labelled_only=True)
    assert ids.dtype == np.int64 and ids.tolist() == [100001, 100002, 100003]
    assert X.dtype == np.float32 and X.shape == (3, len(names)) and X.flags.writeable
    assert y.dtype == np.int8 and y.tolist() == [0, 1, 0]
    ids_all, X_all, y_all, _ = load_matrix(conn, labelled_only=False)
    assert ids_all.tolist() == [100001, 100002, 100003, 100004] and y_all is None
    np.testing.assert_array_equal(X_all[:3], X)
    conn.close()


def test_vector_from_mapping():
    names = ["a", "b", "c"]
    v = vector_from_mapping(names, {"a": 1.5, "c": None})
    assert v.dtype == np.float32
    assert v[0] == 1.5 and math.isnan(v[1]) and math.isnan(v[2])
    with pytest.raises(ValueError, match="unknown feature name.*nope.*zz"):
        vector_from_mapping(names, {"a": 1, "zz": 2, "nope": 3})
    with pytest.raises(ValueError, match="feature b"):
        vector_from_mapping(names, {"b": "7"})


def test_build_features_can_run_again(tiny_db, tmp_path):
    db = tmp_path / "again.db"
    shutil.copy(tiny_db, db)
    conn = apsw.Connection(str(db))
    before = conn.execute("SELECT client_id, x FROM features ORDER BY client_id").fetchall()
    names = build_features(conn, progress=False)
    assert names == [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    assert conn.execute("SELECT client_id, x FROM features ORDER BY client_id").fetchall() == before
    assert conn.execute("SELECT count(*) FROM clients").fetchone() == (4,)
    conn.close()
