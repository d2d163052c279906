"""Drift: PSI fast path and Evidently report over the prediction log; `credit drift` exit codes."""

from __future__ import annotations

import json
import time

import fakemodel as fm
import numpy as np
import pytest
from click.testing import CliRunner

from app.cli.monitoring import drift_command
from app.monitoring.drift import (
    DriftError,
    bin_fractions,
    evidently_report,
    fractions_matrix,
    psi,
    psi_report,
    reference_bins,
)
from app.monitoring.traffic import apply_drift


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    manifest, X, names = fm.make_model_dir(root / "model", p=22, n=4000, n_trees=30, seed=2)
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(root / "model" / "model.txt"))
    return root, manifest, names, booster


def _log(tmp_path, model, X):
    root, manifest, names, booster = model
    conn = fm.make_db(tmp_path / "credit.db", X[:50], names)
    fm.log_predictions(conn, X, booster.predict(X.astype(np.float64)), manifest["model_id"])
    return conn


def test_bins_follow_the_contract():
    v = np.array([1, 2, 3, 4, np.nan, 5, 6, 7, 8, 9, 10], dtype=np.float64)
    spec = reference_bins(v, n_bins=10)
    assert len(spec["fractions"]) == len(spec["edges"]) + 2
    assert sum(spec["fractions"]) == pytest.approx(1.0)
    assert spec["fractions"][-1] == pytest.approx(1 / 11)  # NaN bin
    # searchsorted(side="left"): a value equal to an edge falls in that edge's bin
    f = bin_fractions(np.array([spec["edges"][0]]), spec["edges"], len(spec["fractions"]))
    assert f[0] == 1.0
    assert psi(spec["fractions"], spec["fractions"]) == 0.0


def test_fractions_matrix_matches_bin_fractions():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5000, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 3] = np.round(X[:, 3])  # many values equal to an edge
    specs = [reference_bins(X[:2000, j].astype(np.float64)) for j in range(6)]
    specs[4] = {"edges": specs[4]["edges"], "fractions": specs[4]["fractions"][:-1]}  # NaN shares the last bin
    specs[5] = {"edges": [], "fractions": [0.9, 0.1]}
    got = fractions_matrix(X, specs, chunk=777)
    for j, spec in enumerate(specs):
        want = bin_fractions(X[:, j].astype(np.float64), spec["edges"], len(spec["fractions"]))
        np.testing.assert_allclose(got[j], want, atol=1e-12)
        assert got[j].sum() == pytest.approx(1.0)


def test_same_distribution_is_not_flagged(tmp_path, model):
    root, manifest, names, booster = model
    X = fm.sample(3000, names, np.random.default_rng(99))
    conn = _log(tmp_path, model, X)
    rep = psi_report(conn, manifest)
    assert rep["window"]["rows"] == 3000
    assert not rep["dataset_drift"], rep["features"][:3]
    assert not any(f["drifted"] for f in rep["features"])
    assert not rep["score_drifted"]
    assert [f["psi"] for f in rep["features"]] == sorted((f["psi"] for f in rep["features"]), reverse=True)
    ev = evidently_report(conn, root / "model", html_path=tmp_path / "same.html")
    assert not ev["dataset_drift"], [c for c in ev["features"] if c["drifted"]]
    assert not ev["score_drifted"]
    json.dumps(rep), json.dumps(ev)


def test_shifted_window_is_flagged_by_psi_and_evidently(tmp_path, model):
    root, manifest, names, booster = model
    X = fm.sample(3000, names, np.random.default_rng(5))
    for kind in ("ext-source", "income", "age"):
        X = apply_drift(kind, X, names)
    X[:, names.index("EXT_SOURCE_3")] *= 0.5
    X[:, names.index("INST_DPD_MAX")] += 5
    X[:, names.index("BUREAU_COUNT")] += 3
    conn = _log(tmp_path, model, X)
    rep = psi_report(conn, manifest)
    drifted = {f["feature"] for f in rep["features"] if f["drifted"]}
    assert {"EXT_SOURCE_2", "AMT_INCOME_TOTAL", "DAYS_BIRTH", "EXT_SOURCE_3"} <= drifted
    assert rep["dataset_drift"] and rep["share_drifted"] > 0.3
    assert rep["score_drifted"]
    html = tmp_path / "report" / "drift.html"
    ev = evidently_report(conn, root / "model", html_path=html)
    ev_drifted = {c["column"] for c in ev["features"] if c["drifted"]}
    assert {"EXT_SOURCE_2", "AMT_INCOME_TOTAL", "DAYS_BIRTH"} <= ev_drifted
    assert ev["dataset_drift"] and ev["score_drifted"]
    assert all(c["test"] for c in ev["features"])  # the test Evidently used is named
    text = html.read_text()
    assert html.stat().st_size > 10_000 and "EXT_SOURCE_2" in text and "DAYS_BIRTH" in text


def test_one_drifted_feature_is_named_but_the_dataset_is_not(tmp_path, model):
    root, manifest, names, booster = model
    X = apply_drift("ext-source", fm.sample(3000, names, np.random.default_rng(6)), names)
    conn = _log(tmp_path, model, X)
    rep = psi_report(conn, manifest)
    assert rep["features"][0]["feature"] in ("EXT_SOURCE_2", "EXT_SOURCE_MEAN")
    assert {f["feature"] for f in rep["features"] if f["drifted"]} <= {"EXT_SOURCE_2", "EXT_SOURCE_MEAN"}
    assert not rep["dataset_drift"]


def test_window_selection(tmp_path, model):
    root, manifest, names, booster = model
    rng = np.random.default_rng(8)
    normal = fm.sample(1500, names, rng)
    shifted = apply_drift("ext-source", fm.sample(1500, names, rng), names)
    conn = fm.make_db(tmp_path / "credit.db", normal[:10], names)
    t0 = 1_700_000_000.0
    fm.log_predictions(conn, normal, booster.predict(normal.astype(np.float64)), manifest["model_id"], ts0=t0)
    t1 = t0 + 1500
    fm.log_predictions(conn, shifted, booster.predict(shifted.astype(np.float64)), manifest["model_id"], ts0=t1)
    late = psi_report(conn, manifest, last=1500)
    assert late["window"]["rows"] == 1500 and "EXT_SOURCE_2" in {f["feature"] for f in late["features"] if f["drifted"]}
    with pytest.raises(DriftError):
        psi_report(conn, manifest, until="2023-11-14T22:13:20Z")  # = t0: nothing before
    iso_t1 = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t1))
    before = psi_report(conn, manifest, until=iso_t1)
    assert before["window"]["rows"] == 1500 and not any(f["drifted"] for f in before["features"])
    after = psi_report(conn, manifest, since=iso_t1)
    assert after["window"]["rows"] == 1500


def test_empty_window_gives_a_clear_error(tmp_path, model):
    root, manifest, names, booster = model
    conn = fm.make_db(tmp_path / "credit.db", fm.sample(10, names, np.random.default_rng(0)), names)
    with pytest.raises(DriftError, match="no predictions logged in the window"):
        psi_report(conn, manifest)
    with pytest.raises(DriftError, match="no predictions logged in the window"):
        evidently_report(conn, root / "model", since="2999-01-01")
    conn.close()
    res = CliRunner().invoke(drift_command, ["--db", str(tmp_path / "credit.db"), "--model", str(root / "model")])
    assert res.exit_code == 3  # no verdict
    assert "not enough traffic to judge drift (0 scored rows" in res.output


def test_cli_table_json_and_fail_on_drift(tmp_path, model):
    root, manifest, names, booster = model
    X = fm.sample(1500, names, np.random.default_rng(3))
    conn = _log(tmp_path, model, X)
    conn.close()
    args = ["--db", str(tmp_path / "credit.db"), "--model", str(root / "model")]
    runner = CliRunner()
    res = runner.invoke(drift_command, [*args, "--fail-on-drift"])
    assert res.exit_code == 0, res.output
    assert "verdict: STABLE" in res.output and "PSI" in res.output
    assert "window: last 1,000 requests, " in res.output and " UTC" in res.output  # the default window
    assert "reference: training reference: 2,000 clients (model " in res.output
    res = runner.invoke(drift_command, [*args, "--json", "--last", "1500", "--html", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["verdict"] == "stable" and data["window"]["text"].startswith("last 1,500 requests, ")
    assert data["psi"]["window"]["rows"] == 1500 and data["evidently"]["html"]
    assert (tmp_path / "r.html").exists()
    # now drift the last rows hard and ask again
    conn = fm.make_db(tmp_path / "credit2.db", X[:5], names)
    Y = X.copy()
    Y[:, :] = Y[:, :] * 3 + 1
    fm.log_predictions(conn, Y, booster.predict(Y.astype(np.float64)), manifest["model_id"])
    conn.close()
    args2 = ["--db", str(tmp_path / "credit2.db"), "--model", str(root / "model")]
    res = runner.invoke(drift_command, [*args2, "--psi-only", "--fail-on-drift"])
    assert res.exit_code == 1, res.output
    assert "verdict: ACT" in res.output and "Evidently" not in res.output
    res = runner.invoke(drift_command, [*args2, "--model", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "Error: " in res.output  # an error is not a verdict


@pytest.mark.slow
def test_psi_and_evidently_over_100k_rows(tmp_path):
    """100,000 logged predictions: both paths read the whole window, Evidently on a subsample.

    Their time is measured by benchmarks/bench_drift.py, not here."""
    manifest, X, names = fm.make_model_dir(tmp_path / "model", p=120, n=3000, n_trees=20, seed=4)
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(tmp_path / "model" / "model.txt"))
    rows = fm.sample(100_000, names, np.random.default_rng(1))
    conn = fm.make_db(tmp_path / "credit.db", rows[:10], names)
    fm.log_predictions(conn, rows, booster.predict(rows.astype(np.float64)), manifest["model_id"])
    rep = psi_report(conn, manifest)
    assert rep["window"]["rows"] == 100_000
    ev = evidently_report(conn, tmp_path / "model", html_path=tmp_path / "big.html")
    assert ev["subsampled"] and ev["window"]["rows"] == 100_000
    assert (tmp_path / "big.html").stat().st_size > 0


def test_evidently_columns_are_the_most_important_plus_psi_flagged():
    from app.monitoring.drift import _choose_columns

    names = [f"F{i}" for i in range(50)]
    manifest = {"global_importance": [[f"F{i}", 1.0 / (i + 1)] for i in range(49, -1, -1)]}
    counted, extra = _choose_columns(names, manifest, ["F0", "F3", "F1"], max_columns=5, max_extra=1)
    assert counted == ["F45", "F46", "F47", "F48", "F49"]  # highest importance (listed first)
    assert extra == ["F0"]
    assert _choose_columns(names[:4], manifest, [], 5, 1) == (names[:4], [])


def test_below_the_minimum_window_there_is_no_verdict(tmp_path, model, monkeypatch):
    root, manifest, names, booster = model
    X = fm.sample(150, names, np.random.default_rng(5)) * 3 + 1  # drifted, but too few rows to say so
    _log(tmp_path, model, X).close()
    args = ["--db", str(tmp_path / "credit.db"), "--model", str(root / "model"), "--psi-only"]
    runner = CliRunner()
    res = runner.invoke(drift_command, [*args, "--fail-on-drift"])
    assert res.exit_code == 3, res.output
    assert res.output.splitlines()[0] == (
        "not enough traffic to judge drift (150 scored rows in the window, at least 200 needed); "
        "run `credit traffic` or wait"
    )
    assert "window: last 150 requests, " in res.output
    assert "ACT" not in res.output
    res = runner.invoke(drift_command, [*args, "--json"])
    assert res.exit_code == 3
    assert json.loads(res.output)["verdict"] == "no verdict"
    # the minimum is a setting and an option
    monkeypatch.setenv("CREDIT_DRIFT_MIN_ROWS", "100")
    res = runner.invoke(drift_command, [*args, "--fail-on-drift"])
    assert res.exit_code == 1 and "verdict: ACT" in res.output
    monkeypatch.delenv("CREDIT_DRIFT_MIN_ROWS")
    res = runner.invoke(drift_command, [*args, "--min-rows", "151"])
    assert res.exit_code == 3


def test_json_is_a_summary_unless_details_are_asked_for(tmp_path, model):
    root, manifest, names, booster = model
    _log(tmp_path, model, fm.sample(400, names, np.random.default_rng(6))).close()
    args = ["--db", str(tmp_path / "credit.db"), "--model", str(root / "model"), "--psi-only", "--json"]
    runner = CliRunner()
    short = json.loads(runner.invoke(drift_command, [*args, "--top", "5"]).output)
    assert short["verdict"] in ("stable", "watch", "act")
    assert len(short["psi"]["features"]) == 5 == short["psi"]["features_shown"]
    assert short["psi"]["n_features"] == len(names)
    full = runner.invoke(drift_command, [*args, "--details"])
    assert full.exit_code == 0
    assert len(json.loads(full.output)["psi"]["features"]) == len(names)
    assert len(runner.invoke(drift_command, args).output.splitlines()) < 260  # 22 features + the verdict


def test_evidently_counts_and_the_rows_listed_describe_the_same_thing(tmp_path, model):
    root, manifest, names, booster = model
    X = fm.sample(600, names, np.random.default_rng(8))
    X[:, :] = X * 3 + 1
    _log(tmp_path, model, X).close()
    args = ["--db", str(tmp_path / "credit.db"), "--model", str(root / "model"), "--evidently", "--columns", "5"]
    args += ["--top", "50"]
    res = CliRunner().invoke(drift_command, args)
    assert res.exit_code == 0, res.output
    ev_part = res.output.split("Evidently DataDriftPreset:")[1]
    rows = [ln for ln in ev_part.splitlines() if ln.rstrip().endswith((" yes", " extra", " score"))]
    counted_yes = [ln for ln in rows if ln.rstrip().endswith(" yes") and " YES " in ln]
    counted = [ln for ln in rows if ln.rstrip().endswith(" yes")]
    summary = next(ln for ln in ev_part.splitlines() if ln.startswith("drifted among the most important features:"))
    assert f": {len(counted_yes)}/{len(counted)} " in summary
    extra = [ln for ln in rows if ln.rstrip().endswith(" extra")]
    if extra:
        extra_yes = [ln for ln in extra if " YES " in ln]
        assert f"not counted: {len(extra_yes)}/{len(extra)} extra features" in ev_part
