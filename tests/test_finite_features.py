"""Finite features: a derived feature that overflows float32 is clamped to +-FLOAT32_MAX (app/data/finite.py),
the same way in the ingest, the what-if, the model's input and the API's display."""

from __future__ import annotations

import math
from pathlib import Path

import apsw
import numpy as np
import pytest
from apiserver import KEYS, OFFICER, copy_pipeline
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.data.features import build_features, feature_names, load_matrix
from app.data.finite import FLOAT32_MAX, display_value, to_feature_float32
from app.data.ingest import ingest
from app.scoring.bundle import ModelBundle

TINY = Path(__file__).parent / "data" / "tiny"
CLIENT = 100001  # has two bureau credits in tests/data/tiny
EXTREMES = [1e30, 1e-30, 3e38, -3e38, FLOAT32_MAX, -FLOAT32_MAX, 1e-45, 0.0, 1.0, 250000.0]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_the_rule_clamps_keeps_nan_and_changes_nothing_in_range(values):
    wide = np.array(values, dtype=np.float64)
    out = to_feature_float32(wide)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out) | np.isnan(out))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(wide))
    inside = np.abs(wide) <= FLOAT32_MAX
    np.testing.assert_array_equal(out[inside], wide[inside].astype(np.float32))
    assert np.all(out[wide > FLOAT32_MAX] == np.float32(FLOAT32_MAX))
    assert np.all(out[wide < -FLOAT32_MAX] == -np.float32(FLOAT32_MAX))
    order = np.argsort(wide[~np.isnan(wide)], kind="stable")
    assert np.all(np.diff(out[~np.isnan(wide)][order].astype(np.float64)) >= 0)  # order kept (not strictly)


def test_display_value():
    assert display_value(float("nan")) is None
    assert display_value(float("inf")) == FLOAT32_MAX  # an inf stored by an older import is shown as the model sees it
    assert display_value(float("-inf")) == -FLOAT32_MAX
    assert display_value(np.float32(1.5)) == 1.5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    db = tmp_path_factory.mktemp("finite") / "tiny.db"
    ingest(TINY, db, progress=False)
    conn = apsw.Connection(str(db))
    yield conn
    conn.close()


def rebuilt_features(conn: apsw.Connection, app_values: dict, bureau_values: dict) -> tuple[np.ndarray, list[str]]:
    """The features of every tiny client after setting raw values of CLIENT (rolled back afterwards)."""
    conn.execute("SAVEPOINT extreme")
    try:
        sets = ", ".join(f"{k} = ?" for k in app_values)
        conn.execute(f"UPDATE application_train SET {sets} WHERE SK_ID_CURR = ?", [*app_values.values(), CLIENT])
        sets = ", ".join(f"{k} = ?" for k in bureau_values)
        conn.execute(f"UPDATE bureau SET {sets} WHERE SK_ID_CURR = ?", [*bureau_values.values(), CLIENT])
        build_features(conn, progress=False)
        ids, X, _y, names = load_matrix(conn, labelled_only=False)
        return X[list(ids).index(CLIENT)], names
    finally:
        conn.execute("ROLLBACK TO extreme")
        conn.execute("RELEASE extreme")


def test_the_issue_examples_are_clamped_not_infinite(tiny):
    x, names = rebuilt_features(
        tiny, {"AMT_CREDIT": 1e30, "AMT_INCOME_TOTAL": 1e-30}, {"AMT_CREDIT_SUM": 3e38, "AMT_CREDIT_SUM_DEBT": 3e38}
    )
    f = dict(zip(names, x.tolist(), strict=True))
    assert f["CREDIT_INCOME_RATIO"] == FLOAT32_MAX  # 1e60
    assert f["BUREAU_AMT_CREDIT_SUM"] == FLOAT32_MAX  # 3e38 + 3e38
    assert f["BUREAU_AMT_CREDIT_MEAN"] == pytest.approx(3e38, rel=1e-6)  # in range: unchanged
    assert f["BUREAU_DEBT_CREDIT_RATIO"] == 1.0
    assert all(math.isfinite(v) or math.isnan(v) for v in x.tolist())


@pytest.fixture(scope="module")
def model(pipeline):
    return ModelBundle.load(pipeline.model_dir)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    credit=st.sampled_from(EXTREMES),
    income=st.sampled_from(EXTREMES),
    annuity=st.sampled_from(EXTREMES),
    family=st.sampled_from([1e-30, 0.5, 2.0, 3e38]),
    bureau_sum=st.sampled_from(EXTREMES),
    bureau_debt=st.sampled_from(EXTREMES),
)
def test_extreme_raw_values_give_finite_features_the_display_and_the_model_agree_on(
    tiny, model, credit, income, annuity, family, bureau_sum, bureau_debt
):
    x, names = rebuilt_features(
        tiny,
        {"AMT_CREDIT": credit, "AMT_INCOME_TOTAL": income, "AMT_ANNUITY": annuity, "CNT_FAM_MEMBERS": family},
        {"AMT_CREDIT_SUM": bureau_sum, "AMT_CREDIT_SUM_DEBT": bureau_debt, "AMT_ANNUITY": bureau_sum},
    )
    assert names == model.feature_names
    assert np.all(np.isfinite(x) | np.isnan(x)), [n for n, v in zip(names, x, strict=True) if np.isinf(v)]
    ratio = credit / income if income else None
    if ratio is not None and abs(ratio) > FLOAT32_MAX:
        assert x[names.index("CREDIT_INCOME_RATIO")] == np.float32(math.copysign(FLOAT32_MAX, ratio))
    shown = [display_value(v) for v in x.tolist()]
    assert [v is None for v in shown] == np.isnan(x).tolist()  # null only for a missing value
    again = np.array([np.nan if v is None else v for v in shown], dtype=np.float32)
    np.testing.assert_array_equal(again, x)  # what is shown is what the model reads
    p_stored, p_shown = model.predict(np.stack([x, again]))
    assert math.isfinite(p_stored) and p_stored == p_shown


def test_api_shows_what_the_model_scores_for_extreme_and_old_infinite_rows(pipeline, tmp_path):
    """Through the API: GET /clients/{id}/features shows no null for a value the model reads as a number, and
    scoring exactly what it shows (POST /score) gives the stored row's score, also for an inf an older import
    left in the database."""
    from litestar.testing import TestClient

    from app.config import Settings
    from app.service.api import create_app

    data = copy_pipeline(pipeline, tmp_path)
    conn = apsw.Connection(str(data.db))
    ids = [r[0] for r in conn.execute("SELECT DISTINCT SK_ID_CURR FROM bureau ORDER BY SK_ID_CURR LIMIT 3")]
    with conn:
        conn.execute(
            "UPDATE application_train SET AMT_CREDIT = 1e30, AMT_INCOME_TOTAL = 1e-30"
            f" WHERE SK_ID_CURR IN ({ids[0]}, {ids[1]})"
        )
        conn.execute(f"UPDATE bureau SET AMT_CREDIT_SUM = 3e38 WHERE SK_ID_CURR IN ({ids[1]}, {ids[2]})")
        build_features(conn, progress=False)
    names = feature_names(conn)
    ratio = names.index("CREDIT_INCOME_RATIO")
    old = conn.execute("SELECT client_id, x FROM features WHERE client_id NOT IN (?, ?, ?) LIMIT 1", ids).fetchone()
    x_old = np.frombuffer(old[1], "<f4").copy()
    x_old[ratio] = np.inf  # as stored before the rule
    with conn:
        conn.execute("UPDATE features SET x = ? WHERE client_id = ?", (x_old.tobytes(), old[0]))
    conn.close()

    reader = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    app = create_app(Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=KEYS, keys_file=""))
    with TestClient(app) as client:
        for cid in [*ids, old[0]]:
            feats = client.get(f"/clients/{cid}/features", headers=OFFICER)
            assert feats.status_code == 200, feats.text
            shown = feats.json()["features"]
            blob = reader.execute("SELECT x FROM features WHERE client_id = ?", (cid,)).fetchone()[0]
            stored = np.frombuffer(blob, "<f4")
            assert [shown[n] is None for n in names] == np.isnan(stored).tolist()
            if cid in ids[:2]:
                assert shown["CREDIT_INCOME_RATIO"] == FLOAT32_MAX
            if cid in ids[1:]:
                assert shown["BUREAU_AMT_CREDIT_SUM"] == FLOAT32_MAX
            if cid == old[0]:
                assert shown["CREDIT_INCOME_RATIO"] == FLOAT32_MAX  # not null: the model reads a number
            got = client.get(f"/clients/{cid}/score", headers=OFFICER)
            again = client.post("/score", json={"features": shown}, headers=OFFICER)
            assert got.status_code == 200 and again.status_code == 200, (got.text, again.text)
            assert again.json()["probability"] == got.json()["probability"]
            assert again.json()["decision"] == got.json()["decision"]
    reader.close()
