"""Traffic replay: drift transforms change exactly the intended features; end to end with a real API."""

from __future__ import annotations

import fakemodel as fm
import numpy as np
import pytest

from app.cli.monitoring import default_key
from app.config import load_settings
from app.monitoring.traffic import DRIFTS, TrafficError, apply_drift, drifted_features, payload

NAMES = fm.make_names(22) + [
    "EXT_SOURCE_MIN",
    "EXT_SOURCE_MAX",
    "EXT_SOURCE_PRODUCT",
    "EXT_SOURCE_MISSING_COUNT",
    "EMPLOYED_BIRTH_RATIO",
    "CAR_AGE_AGE_RATIO",
    "OWN_CAR_AGE",
    "ANNUITY_INCOME_PER_PERSON_RATIO",
    "INCOME_TYPE_WORKING",
    "NAME_INCOME_TYPE_Working",
]

EXPECTED = {
    "income": {
        "AMT_INCOME_TOTAL",
        "CREDIT_INCOME_RATIO",
        "ANNUITY_INCOME_RATIO",
        "INCOME_PER_PERSON",
        "ANNUITY_INCOME_PER_PERSON_RATIO",
    },
    "ext-source": {"EXT_SOURCE_2", "EXT_SOURCE_MEAN", "EXT_SOURCE_MIN", "EXT_SOURCE_MAX", "EXT_SOURCE_PRODUCT"},
    "age": {"DAYS_BIRTH", "AGE_YEARS", "EMPLOYED_BIRTH_RATIO", "CAR_AGE_AGE_RATIO"},
}


def _data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    X = fm.sample(n, NAMES, rng)
    ix = {n: i for i, n in enumerate(NAMES)}
    e = X[:, [ix["EXT_SOURCE_1"], ix["EXT_SOURCE_2"], ix["EXT_SOURCE_3"]]].astype(np.float64)
    with np.errstate(all="ignore"):
        X[:, ix["EXT_SOURCE_MIN"]] = np.nanmin(e, 1)
        X[:, ix["EXT_SOURCE_MAX"]] = np.nanmax(e, 1)
        X[:, ix["EXT_SOURCE_PRODUCT"]] = np.prod(e, 1)
        X[:, ix["EXT_SOURCE_MISSING_COUNT"]] = np.isnan(e).sum(1)
        X[:, ix["OWN_CAR_AGE"]] = np.where(rng.random(n) < 0.6, np.nan, rng.integers(0, 20, n))
        birth = X[:, ix["DAYS_BIRTH"]].astype(np.float64)
        X[:, ix["EMPLOYED_BIRTH_RATIO"]] = X[:, ix["DAYS_EMPLOYED"]] / birth
        X[:, ix["CAR_AGE_AGE_RATIO"]] = X[:, ix["OWN_CAR_AGE"]] / (-birth / 365.25)
        X[:, ix["ANNUITY_INCOME_PER_PERSON_RATIO"]] = X[:, ix["AMT_ANNUITY"]] / (
            X[:, ix["AMT_INCOME_TOTAL"]] / X[:, ix["CNT_FAM_MEMBERS"]]
        )
        X[:, ix["INCOME_TYPE_WORKING"]] = rng.random(n) < 0.5
        X[:, ix["NAME_INCOME_TYPE_Working"]] = X[:, ix["INCOME_TYPE_WORKING"]]
    return X, ix


def _changed(X, Y):
    same = (X == Y) | (np.isnan(X) & np.isnan(Y))
    return {NAMES[j] for j in range(X.shape[1]) if not same[:, j].all()}


@pytest.mark.parametrize("kind", DRIFTS)
def test_drift_changes_exactly_the_intended_features(kind):
    X, ix = _data()
    before = X.copy()
    Y = apply_drift(kind, X, NAMES)
    np.testing.assert_array_equal(X, before)  # input untouched
    assert set(drifted_features(kind, NAMES)) == EXPECTED[kind]
    assert _changed(X, Y) == EXPECTED[kind]
    # missing values stay missing
    assert (np.isnan(X) == np.isnan(Y)).all()


def test_income_drift_values():
    X, ix = _data()
    Y = apply_drift("income", X, NAMES).astype(np.float64)
    inc = Y[:, ix["AMT_INCOME_TOTAL"]]
    np.testing.assert_allclose(inc, 2 * X[:, ix["AMT_INCOME_TOTAL"]], rtol=1e-6)
    np.testing.assert_allclose(Y[:, ix["CREDIT_INCOME_RATIO"]], Y[:, ix["AMT_CREDIT"]] / inc, rtol=1e-5)
    np.testing.assert_allclose(Y[:, ix["ANNUITY_INCOME_RATIO"]], Y[:, ix["AMT_ANNUITY"]] / inc, rtol=1e-5)
    np.testing.assert_allclose(Y[:, ix["INCOME_PER_PERSON"]], inc / Y[:, ix["CNT_FAM_MEMBERS"]], rtol=1e-5)


def test_ext_source_drift_values():
    X, ix = _data()
    Y = apply_drift("ext-source", X, NAMES).astype(np.float64)
    e = Y[:, [ix["EXT_SOURCE_1"], ix["EXT_SOURCE_2"], ix["EXT_SOURCE_3"]]]
    np.testing.assert_allclose(Y[:, ix["EXT_SOURCE_2"]], 0.5 * X[:, ix["EXT_SOURCE_2"]], rtol=1e-6)
    np.testing.assert_allclose(Y[:, ix["EXT_SOURCE_MEAN"]], np.nanmean(e, 1), rtol=1e-5)
    np.testing.assert_allclose(Y[:, ix["EXT_SOURCE_MIN"]], np.nanmin(e, 1), rtol=1e-5)
    np.testing.assert_allclose(Y[:, ix["EXT_SOURCE_PRODUCT"]], np.prod(e, 1), rtol=1e-5)


def test_ext_source_drift_without_the_other_sources():
    names = ["EXT_SOURCE_2", "EXT_SOURCE_MEAN", "AMT_CREDIT"]
    X = np.array([[0.6, 0.5, 1.0], [np.nan, 0.4, 2.0]], dtype=np.float32)
    Y = apply_drift("ext-source", X, names)
    assert Y[0, 0] == pytest.approx(0.3) and np.isnan(Y[1, 0])
    assert Y[0, 1] < 0.5 and Y[1, 1] == pytest.approx(0.4)  # adjusted only where EXT_SOURCE_2 is known
    assert (Y[:, 2] == X[:, 2]).all()


def test_age_drift_values():
    X, ix = _data()
    Y = apply_drift("age", X, NAMES).astype(np.float64)
    birth = Y[:, ix["DAYS_BIRTH"]]
    np.testing.assert_allclose(birth, X[:, ix["DAYS_BIRTH"]] + 3652, rtol=1e-6)
    np.testing.assert_allclose(Y[:, ix["AGE_YEARS"]], X[:, ix["AGE_YEARS"]] - 10, rtol=1e-5)
    np.testing.assert_allclose(Y[:, ix["EMPLOYED_BIRTH_RATIO"]], Y[:, ix["DAYS_EMPLOYED"]] / birth, rtol=1e-5)


def test_unknown_drift_and_payload():
    with pytest.raises(TrafficError):
        drifted_features("weather", NAMES)
    x = np.array([1.5, np.nan], dtype=np.float32)
    assert payload(x, ["A", "B"]) == {"features": {"A": 1.5, "B": None}}


def test_default_key_is_the_first_admin_key(tmp_path):
    env = {"CREDIT_API_KEYS": "k1:officer,k2:admin,k3:admin", "CREDIT_KEYS_FILE": str(tmp_path / "none")}
    assert default_key(load_settings(env=env)) == "k2"
    assert default_key(load_settings(env={**env, "CREDIT_UI_KEY": "ui"})) == "ui"
    assert default_key(load_settings(env={"CREDIT_KEYS_FILE": str(tmp_path / "none")})) is None


@pytest.mark.slow
def test_traffic_with_ext_source_drift_is_flagged(pipeline, tmp_path):
    """End to end: a real `credit serve`, `credit traffic --drift ext-source`, then psi_report."""
    import json

    import apsw
    from apiserver import ADMIN_KEY, ApiServer, copy_pipeline
    from click.testing import CliRunner

    from app.cli.monitoring import traffic_command
    from app.monitoring.drift import psi_report
    from app.store import default_path

    env = copy_pipeline(pipeline, tmp_path / "p")
    with ApiServer(env.db, env.model_dir) as api:
        res = CliRunner().invoke(
            traffic_command,
            ["--n", "400", "--drift", "ext-source", "--api", api.url, "--key", ADMIN_KEY, "--db", str(env.db)]
            + ["--concurrency", "8", "--seed", "1", "--json"],
        )
        assert res.exit_code == 0, res.output + api.output()
        out = json.loads(res.output)
        assert out["ok"] == 400 and not out["errors"], out
        assert out["latency_ms"]["p50"] > 0
    manifest = json.loads((env.model_dir / "manifest.json").read_text())
    conn = apsw.Connection(str(default_path(env.db)))  # the log is in the operational store beside the db
    try:
        rep = psi_report(conn, manifest)
    finally:
        conn.close()
    assert rep["window"]["rows"] == 400
    drifted = {f["feature"] for f in rep["features"] if f["drifted"]}
    assert "EXT_SOURCE_2" in drifted
    assert drifted <= {"EXT_SOURCE_2", "EXT_SOURCE_MEAN", "EXT_SOURCE_MIN", "EXT_SOURCE_MAX", "EXT_SOURCE_PRODUCT"}


def test_help_and_error_say_the_applicants_come_from_a_local_database(tmp_path):
    from click.testing import CliRunner

    from app.cli.monitoring import traffic_command

    runner = CliRunner()
    assert "drawn from a LOCAL client database" in runner.invoke(traffic_command, ["--help"]).output
    args = ["--db", str(tmp_path / "none.db"), "--api", "http://127.0.0.1:9", "--key", "k"]
    res = runner.invoke(traffic_command, args)
    assert res.exit_code == 1
    assert "draws the applicants it sends from a local copy of the client database: pass --db PATH" in res.output
