"""Training: exact cost threshold, PSI bins, manifest contents, determinism, DB entry point and CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import apsw
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli.model import train_command
from app.model.train import (
    TrivialPolicyWins,
    best_threshold,
    business_cost,
    psi_bins,
    train,
    train_arrays,
)
from app.scoring.bundle import decision_id

# ------------------------------------------------------------------ threshold search


def _brute(y, p, fn, fp):
    candidates = sorted(set(p)) + [float("inf")]
    return min(business_cost(y, p, t, fn, fp) for t in candidates)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.5, 0.7, 0.9, 1.0]) | st.floats(0, 1)),
        min_size=1,
        max_size=30,
    ),
    fn=st.sampled_from([10.0, 1.0, 3.5, 0.0]),
    fp=st.sampled_from([1.0, 2.0, 0.0]),
)
def test_threshold_is_the_true_cost_minimiser(pairs, fn, fp):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    t, cost = best_threshold(y, p, fn, fp)
    assert cost == pytest.approx(_brute(y, p, fn, fp))
    assert business_cost(y, p, t, fn, fp) == pytest.approx(cost)


def test_threshold_hand_made():
    y = np.array([0, 0, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    # refuse p >= 0.3: fn=0, fp=1 -> cost 1 with fn=10 fp=1
    assert best_threshold(y, p, 10, 1) == (0.3, 1.0)
    # accepting everyone costs 2 * 1; refusing p >= 0.9 costs 1*1 (one fn) when fn is cheap
    assert best_threshold(y, p, 1, 1) == (0.9, 1.0)
    t, c = best_threshold(np.array([0, 0]), np.array([0.2, 0.8]), 10, 1)
    assert c == 0 and t > 0.8


# ------------------------------------------------------------------ PSI bins


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=200))
def test_psi_bins_shape(values):
    v = np.array(values, dtype=np.float32)
    b = psi_bins(v)
    edges, fr = b["edges"], b["fractions"]
    assert edges == sorted(set(edges)) and all(np.isfinite(edges))
    assert len(fr) == len(edges) + 2
    assert sum(fr) == pytest.approx(1.0)
    assert fr[-1] == pytest.approx(np.isnan(v).mean())
    idx = np.searchsorted(np.array(edges), v.astype(np.float64), side="left")
    idx[np.isnan(v)] = len(edges) + 1
    assert np.allclose(np.bincount(idx, minlength=len(fr)) / len(v), fr)


# ------------------------------------------------------------------ training on arrays


def _data(n=800, p=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    logit = 1.5 * X[:, 0] - X[:, 1] + 0.8 * np.nan_to_num(X[:, 2]) - 2.6
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[::50, 3] = np.inf
    return X, y, [f"feat_{i}" for i in range(p)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    X, y, names = _data()
    d = tmp_path_factory.mktemp("train") / "m"
    m = train_arrays(X, y, names, d, seed=5, quick=True, progress=False, num_threads=1)
    return X, y, names, d, m


def test_manifest_contract(trained):
    X, y, names, d, m = trained
    assert json.loads((d / "manifest.json").read_text()) == m
    # the model id names everything that decides (issue 28): model.txt's sha256, features, threshold, calibration, costs
    assert m["model_text_sha256"] == hashlib.sha256((d / "model.txt").read_bytes()).hexdigest()
    assert m["model_id"] == decision_id(m, m["model_text_sha256"])
    assert m["features"] == names and m["n_features"] == len(names)
    assert 0 <= m["threshold"] <= 1
    assert m["costs"] == {"fn": 10.0, "fp": 1.0}
    for key in ("trained_at", "data_fingerprint", "params", "versions", "app_version"):
        assert m[key]
    assert set(m["versions"]) >= {"lightgbm", "numpy", "sklearn", "app"}
    assert set(m["candidates"]) == {"lightgbm", "scorecard", "blend"} and set(m["baselines"]) == {"logistic_regression"}
    champ = m["champion"]["kind"]
    assert champ in m["candidates"] and m["champion"]["why"] and m["champion"]["forced"] is False
    costs = {k: c["cost_per_client"] for k, c in m["candidates"].items()}
    # the lowest honest cost, unless another candidate ties with it (within two paired standard errors) with a
    # higher out-of-fold AUC (tests/test_champion_choice.py)
    cheapest = min(costs, key=costs.get)
    aucs = {k: c["oof_auc"] for k, c in m["candidates"].items()}
    assert champ == cheapest or ("ties with " + cheapest in m["champion"]["why"] and aucs[champ] > aucs[cheapest])
    met = m["metrics"]
    assert met["honest"] is True and met["cost_per_client"] == costs[champ]
    assert len(met["auc_folds"]) == 5 and 0.5 < met["auc_mean"] <= 1 and 0.5 < met["oof_auc"] <= 1
    assert sum(met["confusion"].values()) == len(y)
    ev = m["evaluation"]
    assert ev["trivial"]["refuse_all"] == pytest.approx(np.mean(y == 0))
    assert ev["trivial"]["accept_all"] == pytest.approx(10 * np.mean(y == 1))
    assert ev["beats_trivial"] and met["cost_per_client"] < min(ev["trivial"].values())
    # the threshold is the cost minimiser over the calibrated out-of-fold probabilities: the cost curve's minimum
    assert ev["chosen"]["threshold"] == m["threshold"]
    assert ev["chosen"]["cost_per_client"] <= min(c for _, c in ev["cost_curve"]) + 1e-12
    for key in ("roc", "cost_curve", "score_bands"):
        assert ev[key]
    assert set(ev["reliability"]) == {"uncalibrated", "calibrated"}
    cal = m["calibration"]
    assert cal["method"] in ("none", "platt") and cal["a"] > 0
    assert cal["method"] != "none" or (cal["a"], cal["b"]) == (1.0, 0.0)
    assert cal["honest_log_loss"][cal["method"]] == min(cal["honest_log_loss"].values())
    for fig in m["candidates"].values():
        assert set(fig["calibrated"]) == {"brier", "log_loss", "ece"} == set(fig["uncalibrated"])
    assert m["search"]["trials_per_search"] == 3 and m["search"]["threads"] == 1
    html = (d / "report.html").read_text()
    assert html.count("<svg") == 4 and "refuse everybody" in html and m["model_id"] in html


def test_reference_and_importance(trained):
    X, y, names, d, m = trained
    ref = m["reference"]
    R = np.load(d / ref["file"], allow_pickle=False)
    S = np.load(d / ref["scores_file"], allow_pickle=False)
    assert R.dtype == np.float32 and R.shape == (ref["rows"], len(names)) and ref["rows"] == len(y)
    assert S.dtype == np.float64 and S.shape == (ref["rows"],) and np.all((S >= 0) & (S <= 1))
    assert set(ref["bins"]) == set(names)
    assert len(ref["score_bins"]["fractions"]) == len(ref["score_bins"]["edges"]) + 2
    imp = m["global_importance"]
    assert [f for f, _ in imp] and sorted(f for f, _ in imp) == sorted(names)
    assert [v for _, v in imp] == sorted((v for _, v in imp), reverse=True)
    assert imp[0][0] in {"feat_0", "feat_1", "feat_2"}
    import lightgbm as lgb

    from app.model.calibration import apply

    raw = lgb.Booster(model_file=str(d / "model.txt")).predict(R, raw_score=True)
    np.testing.assert_allclose(apply(raw, m["calibration"]), S)  # reference scores are calibrated PDs


def test_same_seed_same_model_id(trained, tmp_path):
    X, y, names, _, m = trained
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "score.so").symlink_to("model-old.so")  # a previous model's library
    again = train_arrays(X, y, names, tmp_path / "again", seed=5, quick=True, progress=False, num_threads=1)
    assert again["model_id"] == m["model_id"]
    assert (tmp_path / "again" / "model.txt").read_bytes() == (trained[3] / "model.txt").read_bytes()
    assert not (tmp_path / "again" / "score.so").is_symlink()  # stale link dropped until compile


def test_rejects_bad_input(tmp_path):
    X, y, names = _data(n=100)
    with pytest.raises(ValueError):
        train_arrays(X, y[:-1], names, tmp_path, quick=True, progress=False)
    with pytest.raises(ValueError, match="each class"):
        train_arrays(X, np.zeros(100, np.int8), names, tmp_path, quick=True, progress=False)


# ------------------------------------------------------------------ from the database (contract tables)


def _tiny_db(path: Path) -> None:
    X, y, names = _data(n=500, p=6, seed=3)
    conn = apsw.Connection(str(path))
    conn.execute(
        "CREATE TABLE features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL);"
        "CREATE TABLE feature_names(idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        "CREATE TABLE labels(client_id INTEGER PRIMARY KEY, target INTEGER NOT NULL);"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    )
    with conn:
        conn.executemany("INSERT INTO feature_names VALUES (?, ?)", list(enumerate(names)))
        conn.executemany(
            "INSERT INTO features VALUES (?, ?)", [(100 + i, X[i].astype("<f4").tobytes()) for i in range(len(y))]
        )
        conn.executemany("INSERT INTO labels VALUES (?, ?)", [(100 + i, int(v)) for i, v in enumerate(y[:450])])
        conn.execute("INSERT INTO meta VALUES ('data_fingerprint', 'fp-test-123')")
    conn.close()


def test_train_from_database(tmp_path):
    db = tmp_path / "t.db"
    _tiny_db(db)
    m = train(db, tmp_path / "m", seed=1, quick=True, progress=False, folds=3)
    assert m["data_fingerprint"] == "fp-test-123"
    assert m["metrics"]["n_train"] == 450
    assert m["features"] == [f"feat_{i}" for i in range(6)]


def test_train_cli(tmp_path):
    db = tmp_path / "t.db"
    _tiny_db(db)
    res = CliRunner().invoke(
        train_command, ["--db", str(db), "--model", str(tmp_path / "m"), "--quick", "--fn-cost", "5", "--folds", "3"]
    )
    assert res.exit_code == 0, res.output
    for name in ("LightGBM (tuned)", "logistic scorecard", "logistic regression (baseline)", "accept everybody"):
        assert name in res.output
    assert "report.html" in res.output and (tmp_path / "m" / "report.html").is_file()
    m = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert m["costs"] == {"fn": 5.0, "fp": 1.0}
    res = CliRunner().invoke(train_command, ["--db", str(tmp_path / "nope.db"), "--model", str(tmp_path / "m2")])
    assert res.exit_code != 0 and "nope.db" in res.output


def test_train_cli_threads_trials_monotone(tmp_path):
    db = tmp_path / "t.db"
    _tiny_db(db)
    args = ["--db", str(db), "--model", str(tmp_path / "m"), "--quick", "--folds", "3", "--threads", "2"]
    res = CliRunner().invoke(
        train_command, [*args, "--trials", "2", "--monotone", "feat_0=+1", "--candidates", "lightgbm"]
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert m["search"]["threads"] == 2 and m["search"]["trials_per_search"] == 2
    assert m["search"]["monotone"] == {"feat_0": 1} and set(m["candidates"]) == {"lightgbm"}
    assert m["params"]["monotone_constraints"] == [1, 0, 0, 0, 0, 0]
    res = CliRunner().invoke(train_command, [*args, "--monotone", "nope=+1"])
    assert res.exit_code != 0 and "nope" in res.output
    res = CliRunner().invoke(train_command, [*args, "--monotone", "feat_0=up"])
    assert res.exit_code != 0 and "feat_0=up" in res.output
    res = CliRunner().invoke(train_command, [*args, "--candidates", "forest"])
    assert res.exit_code != 0 and "forest" in res.output


# ------------------------------------------------------------------ champions and the trivial policy


def _linear(n=2000, p=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    logit = X[:, :8] @ np.array([0.6, -0.5, 0.5, 0.4, -0.4, 0.3, 0.3, -0.3]) - 2.0
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)


def _interaction(n=2000, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    logit = np.where((X[:, 0] > 0) == (X[:, 1] > 0), 1.5, -3.0)  # risk depends on the pair only
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)


@pytest.mark.parametrize(("make", "winner"), [(_linear, "scorecard"), (_interaction, "lightgbm")])
def test_the_right_champion_wins_and_the_model_id_is_reproducible(make, winner, tmp_path):
    X, y = make()
    names = [f"x{i}" for i in range(X.shape[1])]
    kw = {"seed": 0, "quick": True, "progress": False, "num_threads": 1, "candidates": ("lightgbm", "scorecard")}
    m = train_arrays(X, y, names, tmp_path / "a", **kw)
    assert m["champion"]["kind"] == winner, m["champion"]
    other = next(k for k in m["candidates"] if k != winner)
    assert m["candidates"][winner]["oof_auc"] > m["candidates"][other]["oof_auc"]
    again = train_arrays(X, y, names, tmp_path / "b", **kw)
    assert again["model_id"] == m["model_id"]
    assert (tmp_path / "a" / "model.txt").read_bytes() == (tmp_path / "b" / "model.txt").read_bytes()
    assert again["threshold"] == m["threshold"] and again["calibration"] == m["calibration"]


def test_stops_when_the_trivial_policy_wins(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 4)).astype(np.float32)
    y = (rng.random(600) < 0.2).astype(np.int8)  # no signal at all
    kw = {"seed": 1, "quick": True, "progress": False, "num_threads": 1}
    with pytest.raises(TrivialPolicyWins, match="refuse all"):
        train_arrays(X, y, ["a", "b", "c", "d"], tmp_path / "m", **kw)
    assert not (tmp_path / "m" / "manifest.json").exists()
    m = train_arrays(X, y, ["a", "b", "c", "d"], tmp_path / "m", force=True, **kw)
    assert m["champion"]["forced"] is True and m["evaluation"]["beats_trivial"] is False


def test_cli_exit_code_when_the_trivial_policy_wins(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    db = tmp_path / "t.db"
    conn = apsw.Connection(str(db))
    conn.execute(
        "CREATE TABLE features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL);"
        "CREATE TABLE feature_names(idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        "CREATE TABLE labels(client_id INTEGER PRIMARY KEY, target INTEGER NOT NULL);"
    )
    with conn:
        conn.executemany("INSERT INTO feature_names VALUES (?, ?)", [(0, "a"), (1, "b"), (2, "c")])
        conn.executemany("INSERT INTO features VALUES (?, ?)", [(i, X[i].astype("<f4").tobytes()) for i in range(400)])
        conn.executemany("INSERT INTO labels VALUES (?, ?)", [(i, int(rng.random() < 0.2)) for i in range(400)])
    conn.close()
    args = ["--db", str(db), "--model", str(tmp_path / "m"), "--quick", "--folds", "3"]
    res = CliRunner().invoke(train_command, args)
    assert res.exit_code == 1 and "does not beat the trivial policy" in res.output and "--force" in res.output
    res = CliRunner().invoke(train_command, [*args, "--force"])
    assert res.exit_code == 0 and "FORCED" in res.output


def test_search_trials_defaults_then_steady_then_random_on_the_inner_split_only():
    from app.model import search

    X, y, _ = _data(n=600, p=6)
    idx = np.arange(0, 600, 2)  # only even rows may be looked at
    res = search.tune(X, y, idx, seed=0, trials=3, budget_seconds=None, num_threads=1, quick=False)
    assert [t["trial"] for t in res["trials"]] == [0, 1, 2]
    assert res["trials"][0]["learning_rate"] == search.base_params(0, False, 1)["learning_rate"]
    assert res["trials"][1]["learning_rate"] == search.STEADY["learning_rate"]
    assert res["inner_auc"] == max(t["inner_auc"] for t in res["trials"])
    tr, va = search.inner_split(y, idx, 0)
    assert set(tr) | set(va) == set(idx) and not set(tr) & set(va)
    assert (
        search.patience({"learning_rate": 0.02}, False) == 100 and search.patience({"learning_rate": 0.2}, True) == 10
    )
    # changing rows outside idx changes nothing
    X2 = X.copy()
    X2[1::2] = np.nan
    again = search.tune(X2, y, idx, seed=0, trials=3, budget_seconds=None, num_threads=1, quick=False)
    assert again["trials"] == res["trials"]


def test_a_trial_keeps_at_least_its_patience_in_trees():
    from app.model import search

    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 4)).astype(np.float32)
    y = (rng.random(800) < 0.25).astype(np.int8)  # no signal: validation curves peak within their first rounds
    res = search.tune(X, y, np.arange(800), seed=0, trials=3, budget_seconds=None, num_threads=1, quick=False)
    floors = [search.patience(t, False) for t in res["trials"]]
    assert all(t["n_trees"] == max(t["stopped_at"], f) for t, f in zip(res["trials"], floors, strict=True))
    assert any(t["stopped_at"] < f for t, f in zip(res["trials"], floors, strict=True))
    assert res["n_trees"] >= search.patience(res["params"], False)


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 10**7), features=st.integers(1, 2000), more=st.integers(0, 10**7), threads=st.integers(1, 9))
def test_fit_threads_grow_with_the_data_and_stay_within_the_request(rows, features, more, threads):
    from app.model import search

    n = search.fit_threads(rows, features, threads)
    assert 1 <= n <= threads
    assert search.fit_threads(rows + more, features, threads) >= n
    assert search.fit_threads(4000, 26, 2) == 1 and search.fit_threads(250_000, 416, 2) == 2
