"""A challenger in shadow (issue 19 item 4): install, SQL challenger_*, shadow log rows, promote / rollback under
load on a real server, refusal of a bundle that fails verification.

The challenger is the session pipeline's model with the first tree's leaf values changed
(benchmarks.bench_shadow.perturbed_copy: a different model id and different scores, compiled through the same
parity gates), so no second training run is needed.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import apsw
import httpx
import numpy as np
import pytest
from apiserver import ADMIN, OFFICER, ApiServer, copy_pipeline
from click.testing import CliRunner
from loadgen import run_load
from needs import needs

from app.cli.main import cli
from app.model.compile import compile_model
from app.scoring import layout
from app.scoring.bundle import MANIFEST, ModelBundle, ModelError
from app.scoring.challenger import install_challenger, promote, rollback
from benchmarks.bench_shadow import perturbed_copy

SETTLE = 3.0  # seconds for every worker of a server to switch after a promote (checks every 0.5 s)


def quick_compile(folder: Path) -> dict:
    return compile_model(folder, progress=False, tl2cgen_reference=False, with_shap=False)


@pytest.fixture(scope="module")
def shadow(pipeline, tmp_path_factory):
    """A private pipeline copy whose serving folder has the pipeline's model as champion and a challenger."""
    root = tmp_path_factory.mktemp("challenger")
    data = copy_pipeline(pipeline, root / "data")
    src = perturbed_copy(pipeline.model_dir, root / "next")
    champion_id = ModelBundle.load(data.model_dir).model_id
    challenger = install_challenger(src, data.model_dir, quick_compile)
    data.champion_id, data.challenger_id, data.src = champion_id, challenger.model_id, src
    return data


def client_ids(db: Path, n: int) -> list[int]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT ?", (n,))]
    finally:
        conn.close()


def log_rows(log_db: Path) -> dict[str, tuple]:
    conn = apsw.Connection(str(log_db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT request_id, client_id, probability, decision, model_id, challenger_score, challenger_model_id"
                " FROM prediction_log"
            )
        }
    finally:
        conn.close()


def log_db_of(db: Path) -> Path:
    from app import store

    return store.default_path(db)


# ---------------------------------------------------------------- layout and install


def test_install_makes_the_layout_and_keeps_the_champion_paths(shadow):
    folder = shadow.model_dir
    assert (folder / "champion").is_symlink() and (folder / "challenger").is_symlink()
    assert os.readlink(folder / "champion").startswith("bundles/")
    # the plain names still read the champion (through champion/)
    assert os.readlink(folder / MANIFEST) == f"champion/{MANIFEST}"
    assert ModelBundle.load(folder).model_id == shadow.champion_id
    pair = ModelBundle.load_pair(folder)
    assert pair.champion.model_id == shadow.champion_id
    assert pair.challenger is not None and pair.challenger.model_id == shadow.challenger_id
    assert pair.challenger_error is None


def test_challenger_trained_in_the_serving_folder_is_refused(shadow):
    with pytest.raises(ModelError, match="its own folder"):
        install_challenger(shadow.model_dir, shadow.model_dir, quick_compile)


def test_a_tampered_challenger_is_not_loaded_nor_promoted(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path / "data")
    src = perturbed_copy(pipeline.model_dir, tmp_path / "next")
    chal = install_challenger(src, data.model_dir, quick_compile)
    with open(chal.library_path, "ab") as fh:  # the library no longer matches its manifest's sha256
        fh.write(b"\0")
    pair = ModelBundle.load_pair(data.model_dir)
    assert pair.challenger is None and "refusing to load" in pair.challenger_error
    before = os.readlink(data.model_dir / "champion")
    with pytest.raises(ModelError, match="refusing to load"):
        promote(data.model_dir)
    assert os.readlink(data.model_dir / "champion") == before  # nothing switched
    result = CliRunner().invoke(cli, ["promote", "--model", str(data.model_dir)])
    assert result.exit_code == 1 and "refusing to load" in result.output


# ---------------------------------------------------------------- SQL


def test_sql_challenger_score_equals_the_challenger_library(shadow):
    from app.scoring.db import connect

    pair = ModelBundle.load_pair(shadow.model_dir)
    conn = connect(shadow.db, pair.champion, readonly=True, challenger=pair.challenger)
    try:
        rows = conn.execute(
            "SELECT client_id, x, score(client_id), challenger_score(client_id), challenger_decision(client_id),"
            " challenger_model_id(), model_id(), challenger_model_threshold()"
            " FROM features ORDER BY client_id LIMIT 300"
        ).fetchall()
        assert conn.execute("SELECT challenger_score(-1), challenger_score(NULL)").fetchall() == [(None, None)]
        with pytest.raises(apsw.SQLError, match="challenger_score"):
            conn.execute("SELECT challenger_score('7')").fetchall()
    finally:
        conn.close()
    X = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
    want = pair.challenger.predict(np.ascontiguousarray(X))
    assert [r[3] for r in rows] == want.tolist()  # exact: the same compiled code
    assert [r[2] for r in rows] == pair.champion.predict(np.ascontiguousarray(X)).tolist()
    assert any(r[2] != r[3] for r in rows)  # two different models
    assert [r[4] for r in rows] == [pair.challenger.decide(p) for p in want]
    assert {r[5] for r in rows} == {shadow.challenger_id} and {r[6] for r in rows} == {shadow.champion_id}


def test_credit_sql_has_the_challenger_functions(shadow):
    cid = client_ids(shadow.db, 1)[0]
    query = f"SELECT model_id(), challenger_model_id(), challenger_score({cid}) IS NOT NULL"
    result = CliRunner().invoke(
        cli, ["sql", query, "--format", "csv", "--db", str(shadow.db), "--model", str(shadow.model_dir)]
    )
    assert result.exit_code == 0, result.output
    assert f"{shadow.champion_id},{shadow.challenger_id},1" in result.output


@needs("sqlite3", "just system-deps")
def test_sqlite3_shell_loads_both(shadow):
    import subprocess

    sqlite3 = shutil.which("sqlite3") or "sqlite3"
    cid = client_ids(shadow.db, 1)[0]
    folder = shadow.model_dir
    script = (
        f".load {folder}/score\n.load {folder}/challenger/challenger\n"
        f"SELECT model_id(), challenger_model_id(), challenger_score({cid}) = challenger_score({cid});\n"
    )
    out = subprocess.run([sqlite3, "-readonly", str(shadow.db)], input=script, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{shadow.champion_id}|{shadow.challenger_id}|1"


# ---------------------------------------------------------------- the API in shadow


def test_shadow_row_has_both_scores_and_the_champions_decision(shadow):
    ids = client_ids(shadow.db, 5)
    pair = ModelBundle.load_pair(shadow.model_dir)
    with ApiServer(shadow.db, shadow.model_dir) as api, api.client(headers=OFFICER) as http:
        answers = [http.get(f"/clients/{cid}/score").json() for cid in ids]
        batch = http.post("/score/batch", json={"client_ids": ids[:2]}).json()
        ready = http.get("/readyz", headers=ADMIN).json()
        fair = http.get("/monitoring/fairness", params={"min_group": 1}, headers=ADMIN, timeout=600).json()
    assert ready["checks"]["challenger"] == "ok" and ready["challenger_model_id"] == shadow.challenger_id
    logged = log_rows(log_db_of(shadow.db))
    conn = apsw.Connection(str(shadow.db), flags=apsw.SQLITE_OPEN_READONLY)
    xs = {c: np.frombuffer(x, dtype="<f4") for c, x in conn.execute("SELECT client_id, x FROM features")}
    conn.close()
    for a in answers:
        assert a["model_id"] == shadow.champion_id and "challenger" not in str(a.keys())
        cid, p, d, model_id, cp, cmodel = logged[a["request_id"]]
        assert (cid, p, d, model_id) == (a["client_id"], a["probability"], a["decision"], shadow.champion_id)
        assert cmodel == shadow.challenger_id
        assert cp == pair.challenger.predict_row(xs[cid])
        assert d == pair.champion.decide(p)
    # fairness of both models on the same clients: approvals per group add up to each model's own decisions
    comparison = fair["challenger"]
    assert comparison["challenger_model_id"] == shadow.challenger_id
    for who, model in (("champion", pair.champion), ("challenger", pair.challenger)):
        groups = comparison[who]["attributes"]["gender"]["groups"]
        assert sum(g["clients"] for g in groups) == len(ids)
        approved = sum(round(g["clients"] * g["approval_rate"]) for g in groups)
        assert approved == sum(model.decide(model.predict_row(xs[c])) == "accept" for c in ids)
    for item in batch["results"]:
        assert logged[item["request_id"]][4:] == (
            pair.challenger.predict_row(xs[item["client_id"]]),
            shadow.challenger_id,
        )


# ---------------------------------------------------------------- promote and rollback under load


def test_promote_and_rollback_under_load(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path / "data")
    src = perturbed_copy(pipeline.model_dir, tmp_path / "next")
    champion = ModelBundle.load(data.model_dir).model_id
    challenger = install_challenger(src, data.model_dir, quick_compile).model_id
    ids = client_ids(data.db, 200)
    requests = [("GET", f"/clients/{cid}/score", None, "score") for cid in ids]
    stop = threading.Event()
    switches: list[tuple[str, float]] = []

    def operator(url: str) -> None:
        time.sleep(1.5)
        switches.append(("promote", time.monotonic()))
        promote(data.model_dir)
        time.sleep(SETTLE + 3.0)
        switches.append(("rollback", time.monotonic()))
        rollback(data.model_dir)
        time.sleep(SETTLE + 3.0)
        stop.set()

    with ApiServer(data.db, data.model_dir, workers=2) as api:
        op = threading.Thread(target=operator, args=(api.url,))
        op.start()
        report = run_load(api.url, iter(requests * 10_000), headers=OFFICER, connections=8, duration=60, stop=stop)
        op.join()
        with httpx.Client(base_url=api.url, headers=OFFICER) as http:
            last = http.get(f"/clients/{ids[0]}/score").json()
    results = report.results
    assert results and all(r.status == 200 for r in results), {r.status for r in results}
    logged = log_rows(log_db_of(data.db))
    by_id = {r.request_id: r for r in results}
    assert set(by_id) <= set(logged)  # every answer logged
    models = [logged[r.request_id][3] for r in sorted(results, key=lambda r: r.sent_at)]
    assert set(models) == {champion, challenger}  # both decided at some point
    promoted_at, rolled_back_at = switches[0][1], switches[1][1]
    # once the promote settled (each worker reads the links at most every 0.5 s, then loads and verifies the pair in
    # the background; SETTLE is generous for a loaded machine) the new model decides; after the rollback, the old
    settled = [logged[r.request_id][3] for r in results if promoted_at + SETTLE < r.sent_at < rolled_back_at]
    assert settled and set(settled) == {challenger}
    after = [logged[r.request_id][3] for r in results if r.sent_at > rolled_back_at + SETTLE]
    assert after and set(after) == {champion}
    assert last["model_id"] == champion
    # each answer is its log row, and the decision is the deciding model's (both share the threshold here)
    # (after the rollback `previous` is gone: the history was walked back), so every installed bundle is read
    installed = sorted(p for p in (data.model_dir / layout.BUNDLES).iterdir() if not p.name.startswith("."))
    bundles = {b.model_id: b for b in (ModelBundle.load(p) for p in installed)}
    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    xs = {c: np.frombuffer(x, dtype="<f4") for c, x in conn.execute("SELECT client_id, x FROM features")}
    conn.close()
    for r in results:  # the logged model id is the model whose score was answered (the two differ)
        cid, p, d, model_id, cp, cm = logged[r.request_id]
        assert r.probability == p == bundles[model_id].predict_row(xs[cid]) and d == bundles[model_id].decide(p)
        if cm is not None:  # before the promote the challenger was in shadow
            assert model_id == champion and cm == challenger and cp == bundles[cm].predict_row(xs[cid])


def test_cli_promote_status_and_rollback(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path / "data")
    src = perturbed_copy(pipeline.model_dir, tmp_path / "next")
    runner = CliRunner()
    store = ["--log-db", str(tmp_path / "store.db")]
    champion = ModelBundle.load(data.model_dir).model_id
    result = runner.invoke(cli, ["promote", "--model", str(data.model_dir), *store])
    assert result.exit_code == 1 and "no champion link" in result.output
    result = runner.invoke(
        cli,
        ["compile", "--model", str(src), "--challenger", "--into", str(data.model_dir), "--no-tl2cgen", *store],
    )
    assert result.exit_code == 0, result.output
    challenger = ModelBundle.load_pair(data.model_dir).challenger.model_id
    result = runner.invoke(cli, ["promote", "--model", str(data.model_dir), "--status"])
    assert f"champion    {champion}" in result.output and f"challenger  {challenger}" in result.output
    result = runner.invoke(cli, ["promote", "--model", str(data.model_dir), *store])
    assert result.exit_code == 0, result.output
    assert ModelBundle.load(data.model_dir).model_id == challenger
    assert layout.role_dir(data.model_dir, "challenger") is None
    result = runner.invoke(cli, ["promote", "--model", str(data.model_dir), "--rollback", *store])
    assert result.exit_code == 0, result.output
    assert ModelBundle.load(data.model_dir).model_id == champion
    result = runner.invoke(cli, ["promote", "--model", str(data.model_dir), "--rollback", *store])  # never toggles
    assert result.exit_code == 1 and "no earlier champion" in result.output
    assert ModelBundle.load(data.model_dir).model_id == champion


# ---------------------------------------------------------------- realised performance: the comparison


def test_performance_compares_champion_and_challenger_on_the_same_clients(tmp_path):
    from sklearn.metrics import roc_auc_score

    from app import store
    from app.monitoring import performance
    from app.store import predlog

    conn = store.open_store(tmp_path / "log.db")
    rng = np.random.default_rng(3)
    n = 600
    y = rng.random(n) < 0.2
    p1 = np.clip(0.15 + 0.3 * y + rng.normal(0, 0.15, n), 0, 1)
    p2 = np.clip(0.15 + 0.4 * y + rng.normal(0, 0.12, n), 0, 1)
    rows = []
    for i in range(n):
        shadow = i % 3 != 0  # a third were scored before the challenger was installed
        rows.append(
            predlog.LogRow(
                ts=1000.0 + i, request_id=f"r{i}", client_id=i + 1, features=b"", probability=float(p1[i]),
                decision="refuse" if p1[i] >= 0.3 else "accept", model_id="champ", latency_ms=1.0, role="officer",
                endpoint="GET /clients/{id}/score", challenger_score=float(p2[i]) if shadow else None,
                challenger_model_id="chal" if shadow else None,
            )
        )  # fmt: skip
    predlog.write(conn, rows)
    conn.executemany(
        "INSERT INTO outcomes (client_id, defaulted, observed_at, source, recorded_at) VALUES (?, ?, ?, 'test', 0)",
        [(i + 1, int(y[i]), 5000.0) for i in range(n)],
    )
    rep = performance.report(conn, fn_cost=10, fp_cost=1, min_outcomes=50, thresholds={"chal": 0.4}, period="all")
    conn.close()
    assert rep["matched"] == n
    [c] = rep["challenger"]
    shadow = np.array([i % 3 != 0 for i in range(n)])
    assert (c["champion_model_id"], c["challenger_model_id"], c["matched"]) == ("champ", "chal", int(shadow.sum()))
    assert c["shadow_rows"] == int(shadow.sum())
    assert c["champion"]["auc"] == pytest.approx(roc_auc_score(y[shadow], p1[shadow]), abs=1e-12)
    assert c["challenger"]["auc"] == pytest.approx(roc_auc_score(y[shadow], p2[shadow]), abs=1e-12)
    assert c["challenger"]["approval_rate"] == pytest.approx(float(np.mean(p2[shadow] < 0.4)))
    assert c["decisions_differ"] == pytest.approx(float(np.mean((p1[shadow] >= 0.3) != (p2[shadow] >= 0.4))))
    d = c["score_distribution"]
    assert sum(d["champion"]) == sum(d["challenger"]) == int(shadow.sum())
    assert d["challenger_refusal_rate"] == pytest.approx(float(np.mean(p2[shadow] >= 0.4)))


def test_a_running_server_refuses_a_challenger_that_fails_verification(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path / "data")
    src = perturbed_copy(pipeline.model_dir, tmp_path / "next")
    champion = ModelBundle.load(data.model_dir).model_id
    chal = install_challenger(src, data.model_dir, quick_compile)
    link = os.readlink(data.model_dir / "challenger")
    layout.set_link(data.model_dir, "challenger", None)  # the server starts with the champion alone
    with open(chal.library_path, "ab") as fh:
        fh.write(b"\0")
    cid = client_ids(data.db, 1)[0]
    with ApiServer(data.db, data.model_dir) as api, api.client(headers=OFFICER) as http:
        assert "challenger" not in http.get("/readyz", headers=ADMIN).json()["checks"]
        layout.set_link(data.model_dir, "challenger", link)  # now points at the tampered bundle
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answer = http.get(f"/clients/{cid}/score")
            assert answer.status_code == 200 and answer.json()["model_id"] == champion
            ready = http.get("/readyz", headers=ADMIN).json()
            if ready["checks"].get("challenger") == "error":
                break
            time.sleep(0.2)
        assert ready["status"] == "ready" and ready["checks"]["challenger"] == "error"
        assert "refusing to load" in ready["reason"]
        answer = http.get(f"/clients/{cid}/score").json()
    row = log_rows(log_db_of(data.db))[answer["request_id"]]
    assert row[3] == champion and row[4:] == (None, None)


def test_dashboard_rows_of_the_comparison():
    from ui.pages.monitoring import challenger_rows

    figures = {"too_few_outcomes": False, "outcomes": 300, "auc": 0.712345, "cost_per_client": 0.5}
    rep = {
        "challenger": [
            {
                "champion_model_id": "a" * 64,
                "challenger_model_id": "b" * 64,
                "score_distribution": {"psi": 0.0123456},
                "champion": figures,
                "challenger": {"too_few_outcomes": True, "outcomes": 3},
            }
        ]
    }
    rows = challenger_rows(rep)
    assert [(r["model"], r["role"], r["auc"], r["psi"]) for r in rows] == [
        ("a" * 12, "champion", 0.7123, None),
        ("b" * 12, "challenger", None, 0.0123),
    ]
    assert challenger_rows({"challenger": []}) == []
