"""The governance loop from the demo, with no request made by hand: a real `credit serve` with a challenger in
shadow; `credit traffic` (stored clients by id) -> `credit outcomes simulate` -> `credit performance` (realised
AUC, the challenger's comparison) -> `credit fairness` (text, JSON, HTML, exit codes) -> `credit drift` (the
window named, no false alarm on undrifted traffic)."""

from __future__ import annotations

import json
import shutil

import apsw
import pytest
from apiserver import ADMIN, ADMIN_KEY, ApiServer, copy_pipeline
from click.testing import CliRunner

from app.cli.main import cli
from app.store import default_path
from benchmarks.bench_shadow import perturbed_copy

N = 900


@pytest.fixture(scope="module")
def loop(pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    data = copy_pipeline(pipeline, root / "data")
    src = perturbed_copy(pipeline.model_dir, root / "next")
    runner = CliRunner()
    res = runner.invoke(
        cli, ["compile", "--model", str(src), "--challenger", "--into", str(data.model_dir), "--no-tl2cgen"]
    )
    assert res.exit_code == 0, res.output
    where = ["--db", str(data.db)]
    with ApiServer(data.db, data.model_dir) as api:
        res = runner.invoke(cli, ["traffic", "--n", str(N), "--api", api.url, "--key", ADMIN_KEY, *where,
                                  "--seed", "3", "--json"])  # fmt: skip
        assert res.exit_code == 0, res.output + api.output()
        data.traffic = json.loads(res.output)
        import httpx

        data.api_drift = httpx.get(api.url + "/monitoring/drift", headers=ADMIN, timeout=30).json()
    res = runner.invoke(cli, ["outcomes", "simulate", *where])
    assert res.exit_code == 0, res.output
    data.simulate = res.output
    data.where = [*where, "--model", str(data.model_dir)]
    data.runner = runner
    return data


def test_traffic_scores_stored_clients_by_id(loop):
    assert loop.traffic["mode"] == "by id" and loop.traffic["ok"] == N and not loop.traffic["errors"]
    conn = apsw.Connection(str(default_path(loop.db)), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        ((rows, with_id),) = conn.execute("SELECT count(*), count(client_id) FROM prediction_log").fetchall()
        (shadow,) = conn.execute("SELECT count(*) FROM prediction_log WHERE challenger_score IS NOT NULL").fetchone()
    finally:
        conn.close()
    assert rows == with_id == N  # every logged decision knows its client
    assert shadow == N  # and the challenger scored each in shadow
    assert "outcomes written for" in loop.simulate


def test_performance_has_a_realised_auc_and_the_challengers_comparison(loop):
    res = loop.runner.invoke(cli, ["performance", *loop.where, "--json", "--period", "all"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["matched"] > 100
    (champion,) = rep["models"]
    assert not champion["too_few_outcomes"] and 0.5 < champion["auc"] <= 1.0
    (chal,) = rep["challenger"]
    assert chal["matched"] == champion["outcomes"]
    assert not chal["challenger"]["too_few_outcomes"] and 0.5 < chal["challenger"]["auc"] <= 1.0


def test_fairness_text_json_html_and_exit_code(loop, tmp_path):
    html = tmp_path / "fairness.html"
    res = loop.runner.invoke(cli, ["fairness", *loop.where, "--json", "--html", str(html)])
    rep = json.loads(res.output)
    assert res.exit_code == (1 if rep["flagged"] else 0), res.output
    assert set(rep["attributes"]) == {"gender", "age_band", "family_status"}
    assert sum(g["clients"] for g in rep["attributes"]["gender"]["groups"]) == rep["clients"] > 0
    assert rep["window"]["text"].startswith("decisions from the first until now (latest per client: ")
    assert rep["challenger"]["champion"]["clients"] == rep["clients"]  # the challenger on the same clients
    page = html.read_text()
    assert "<h1>Fairness of the live decisions</h1>" in page and "gender" in page and "<script" not in page
    text = loop.runner.invoke(cli, ["fairness", *loop.where, "--last", "300"])
    assert text.exit_code in (0, 1)
    assert text.output.startswith("window: last 300 decisions from ")
    assert "gender: best-treated group " in text.output and "challenger " in text.output


def test_fairness_exits_1_when_a_group_is_refused_and_2_on_an_empty_window(loop, tmp_path):
    """Refuse every woman in a copy of the log: her group's approval ratio is 0, below four fifths."""
    db = tmp_path / "credit.db"
    shutil.copy(loop.db, db)
    shutil.copy(default_path(loop.db), default_path(db))
    conn = apsw.Connection(str(default_path(db)))
    conn.execute("ATTACH DATABASE ? AS data", (str(db),))
    conn.execute(
        "UPDATE prediction_log SET decision = 'refuse' "
        "WHERE client_id IN (SELECT client_id FROM data.clients WHERE gender = 'F')"
    )
    conn.close()
    where = ["--db", str(db), "--model", str(loop.model_dir), "--attributes", "gender"]
    res = loop.runner.invoke(cli, ["fairness", *where])
    assert res.exit_code == 1, res.output
    assert "flagged (approval ratio < 0.8, four-fifths rule): gender: F" in res.output
    res = loop.runner.invoke(cli, ["fairness", *where, "--since", "2999-01-01"])
    assert res.exit_code == 2 and "no decisions about known clients" in res.output


def test_drift_names_the_window_and_does_not_alarm_on_undrifted_traffic(loop):
    res = loop.runner.invoke(cli, ["drift", *loop.where, "--fail-on-drift"])
    assert res.exit_code == 0, res.output
    assert f"window: last {N} requests, " in res.output and " UTC" in res.output
    assert "reference: training reference: " in res.output
    assert "verdict: STABLE" in res.output
    # the API says the same (its default window is the last 1,000 requests: all of them here)
    assert loop.api_drift["verdict"]["level"] == "stable"
    assert loop.api_drift["window"]["text"].startswith(f"last {N} requests, ")
    assert loop.api_drift["reference"]["text"].startswith("training reference: ")
