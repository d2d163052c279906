"""`credit reasons`: every refused client's reasons in one file (app/model/portfolio_reasons.py).

On the test pipeline (real SQLite file, compiled model): the file holds exactly the clients the `scores` table
refuses, and each client's reasons are those of its one-client explanation (`credit explain`, the API):
same features, same order, same contributions (the same library path), same sentences; CSV and Parquet say
the same; a bad output name is a clear error and writes nothing.
"""

from __future__ import annotations

import csv

import apsw
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.model.explain import Explainer, explain_client
from app.scoring.db import connect


@pytest.fixture(scope="module")
def args(pipeline):
    return ["--db", str(pipeline.db), "--model", str(pipeline.model_dir)]


@pytest.fixture(scope="module")
def written(args, tmp_path_factory):
    out = tmp_path_factory.mktemp("reasons")
    for name in ("r.csv", "r.parquet"):
        res = CliRunner().invoke(cli, ["reasons", "--out", str(out / name), "--lang", "en", "--top", "3", *args])
        assert res.exit_code == 0, res.output
        assert "reasons of" in res.output and "refused clients" in res.output
    with open(out / "r.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows, pq.read_table(out / "r.parquet").to_pylist()


def test_every_refused_client_and_only_them(pipeline, written):
    rows, _ = written
    conn = connect(pipeline.db, pipeline.model_dir, readonly=True)
    try:
        refused = [r[0] for r in conn.execute("SELECT client_id FROM scores WHERE decision = 'refuse'")]
    finally:
        conn.close()
    assert refused, "the test pipeline refuses some clients"
    assert sorted({int(r["client_id"]) for r in rows}) == refused
    assert {r["decision"] for r in rows} == {"refuse"}
    for cid in refused[:3]:
        ranks = [int(r["rank"]) for r in rows if int(r["client_id"]) == cid]
        assert ranks == list(range(1, len(ranks) + 1)) and len(ranks) <= 3


def test_reasons_equal_the_one_client_explanation(pipeline, written):
    rows, table = written
    explainer = Explainer.load(pipeline.model_dir)
    conn = apsw.Connection(str(pipeline.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        ids = sorted({int(r["client_id"]) for r in rows})
        for cid in ids[:: max(1, len(ids) // 25)]:
            one = explain_client(conn, explainer, cid, top=3, lang="en")
            mine = [r for r in table if r["client_id"] == cid]
            assert [r["feature"] for r in mine] == [x["feature"] for x in one["reasons"]]
            assert [r["shap"] for r in mine] == [x["shap"] for x in one["reasons"]]  # the same bits
            assert [r["sentence"] for r in mine] == [x["sentence"] for x in one["reasons"]]
            assert mine[0]["probability"] == one["probability"]
    finally:
        conn.close()
    assert [(r["client_id"], r["rank"], r["feature"]) for r in table] == [
        (int(r["client_id"]), int(r["rank"]), r["feature"]) for r in rows
    ]
    assert all(float(r["shap"]) == t["shap"] for r, t in zip(rows, table, strict=True))  # CSV: repr, exact


def test_a_bad_output_name_writes_nothing(args, tmp_path):
    res = CliRunner().invoke(cli, ["reasons", "--out", str(tmp_path / "r.xlsx"), *args])
    assert res.exit_code != 0
    assert "r.xlsx: unknown output format 'xlsx'" in res.output and ".csv or .parquet" in res.output
    assert not list(tmp_path.iterdir())


def test_the_documented_sql_gives_the_same_reasons(pipeline, written):
    """docs/performance.md's query over `scores` and `explanations` names the reasons `credit reasons` writes."""
    rows, _ = written
    sql = """
        SELECT client_id, name, shap FROM (
          SELECT e.client_id, e.feature, e.shap,
                 row_number() OVER (PARTITION BY e.client_id ORDER BY e.shap DESC) AS rank
          FROM scores s JOIN explanations e USING (client_id)
          WHERE s.decision = 'refuse' AND e.shap > 0)
        JOIN feature_names ON idx = feature WHERE rank <= 3"""
    conn = connect(pipeline.db, pipeline.model_dir, readonly=True)
    try:
        got = {(cid, name) for cid, name, _shap in conn.execute(sql)}
    finally:
        conn.close()
    assert got == {(int(r["client_id"]), r["feature"]) for r in rows if int(r["rank"]) > 0}
