"""Features on Dask (`credit partition` + `credit features`): equal to `credit ingest` for every feature of every
client, bit for bit in float32; the export is the input of `credit score-batch`; bad input is named."""

from __future__ import annotations

import json
import shutil

import apsw
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli.distributed import features_command, partition_command
from app.data.distributed import SOURCES_FILE, DistributedError, partition_sources
from app.scoring.batch import FEATURES_FILE, read_export_manifest, run_batch

CLIENTS_PER_PARTITION = 700  # 3,000 clients -> 5 partitions


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
    ) as c:
        yield c


@pytest.fixture(scope="module")
def built(pipeline, tmp_path_factory):
    """`credit partition` then `credit features` (its own local cluster of 2 worker processes), via the CLI."""
    root = tmp_path_factory.mktemp("distributed")
    sources, out, db = root / "sources", root / "features", root / "credit.db"
    res = CliRunner().invoke(
        partition_command,
        [str(pipeline.data_dir), "--out", str(sources), "--clients-per-partition", str(CLIENTS_PER_PARTITION)],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        features_command,
        ["--sources", str(sources), "--out", str(out), "--db", str(db), "--workers", "2", "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    return root, sources, out, db, res.output


def rows(db, sql):
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_every_feature_of_every_client_is_bit_for_bit_the_one_machine_value(pipeline, built):
    _root, _sources, out, db, output = built
    one = rows(pipeline.db, "SELECT client_id, x FROM features ORDER BY client_id")
    dist = rows(db, "SELECT client_id, x FROM features ORDER BY client_id")
    assert [r[0] for r in dist] == [r[0] for r in one] and len(one) == 3000
    a = np.frombuffer(b"".join(r[1] for r in one), "<u4")  # compare the float32 bit patterns (NaN included)
    b = np.frombuffer(b"".join(r[1] for r in dist), "<u4")
    assert a.shape == b.shape and np.array_equal(a, b)
    for table in ("feature_names ORDER BY idx", "clients ORDER BY client_id", "labels ORDER BY client_id"):
        assert rows(db, f"SELECT * FROM {table}") == rows(pipeline.db, f"SELECT * FROM {table}")
    meta = dict(rows(db, "SELECT key, value FROM meta"))
    one_meta = dict(rows(pipeline.db, "SELECT key, value FROM meta"))
    for key in ("source", "data_fingerprint", "schema_fingerprint"):
        assert meta[key] == one_meta[key]
    # the Parquet export holds the same bits, in the layout `credit score-batch` reads
    manifest = read_export_manifest(out)
    assert manifest["rows"] == 3000 and len(manifest["partitions"]) == 5
    assert manifest["data_fingerprint"] == one_meta["data_fingerprint"]
    x = np.concatenate(
        [
            pq.read_table(out / p["file"]).column("x").combine_chunks().flatten().to_numpy()
            for p in manifest["partitions"]
        ]
    )
    assert np.array_equal(x.view("<u4"), a)
    assert "3,000 clients x" in output and "Dask: 2 workers" in output and "dashboard http://127.0.0.1:" in output


def test_the_distributed_export_scores_like_sql_on_the_cluster(pipeline, built, cluster, tmp_path):
    from app.scoring.db import connect

    _root, _sources, out, _db, _output = built
    result = run_batch(
        out, tmp_path / "scores", pipeline.model_dir, scheduler=cluster.scheduler_address, progress=False
    )
    assert not result.failed and result.rows == 3000
    conn = connect(pipeline.db, pipeline.model_dir)
    try:
        sql = dict(conn.execute("SELECT client_id, score(client_id) FROM features"))
    finally:
        conn.close()
    got = {}
    for part in sorted((tmp_path / "scores").glob("part-*.parquet")):
        t = pq.read_table(part)
        got.update(zip(t.column("client_id").to_pylist(), t.column("probability").to_pylist(), strict=True))
    assert got == sql


def test_partitions_split_clients_by_range_and_keep_every_row(pipeline, built):
    _root, sources, _out, _db, _output = built
    manifest = json.loads((sources / SOURCES_FILE).read_text())
    assert sum(p["clients"] for p in manifest["partitions"]) == 3000
    one = dict(
        rows(
            pipeline.db,
            "SELECT 'bureau', count(*) FROM bureau UNION ALL SELECT 'installments_payments', count(*) "
            "FROM installments_payments UNION ALL SELECT 'application_train', count(*) FROM application_train",
        )
    )
    for table, n in one.items():
        assert sum(p["rows"][table] for p in manifest["partitions"]) == n
    seen: set[int] = set()
    last = -1
    for p in manifest["partitions"]:
        ids = pq.read_table(sources / "bureau" / p["file"]).column("SK_ID_CURR").to_numpy()
        apps = np.concatenate(
            [
                pq.read_table(sources / t / p["file"]).column("SK_ID_CURR").to_numpy()
                for t in ("application_train", "application_test")
            ]
        )
        assert apps.min() > last  # ranges of client ids, in order
        last = apps.max()
        assert set(ids.tolist()) <= set(apps.tolist())  # a client's credits travel with the client
        seen |= set(apps.tolist())
    assert len(seen) == 3000


def test_a_bad_target_is_named_with_file_line_and_column(pipeline, tmp_path):
    data = tmp_path / "raw"
    shutil.copytree(pipeline.data_dir, data)
    path = data / "application_train.csv"
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[5].rstrip("\n").split(",")
    cells[header.index("TARGET")] = "7"
    lines[5] = ",".join(cells) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(DistributedError, match=r"application_train\.csv line 6 column TARGET: must be 0 or 1, got 7"):
        partition_sources(data, tmp_path / "sources", progress=False)
    assert not (tmp_path / "sources").exists()


def test_missing_file_and_foreign_output_folder_are_refused(pipeline, tmp_path):
    res = CliRunner().invoke(partition_command, [str(tmp_path), "--out", str(tmp_path / "s")])
    assert res.exit_code == 1 and "missing file(s)" in res.output and "application_train.csv" in res.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    res = CliRunner().invoke(partition_command, [str(pipeline.data_dir), "--out", str(foreign)])
    assert res.exit_code == 1 and "refusing to replace it" in res.output
    assert (foreign / "notes.txt").read_text() == "keep me"
    res = CliRunner().invoke(
        features_command, ["--sources", str(tmp_path), "--out", str(tmp_path / "f"), "--db", str(tmp_path / "d.db")]
    )
    assert res.exit_code == 1 and SOURCES_FILE in res.output and not (tmp_path / "d.db").exists()


def test_export_manifest_is_replaced_not_merged(built):
    _root, _sources, out, _db, _output = built
    assert (out / FEATURES_FILE).is_file() and not list(out.parent.glob(".features.tmp-*"))


def test_train_on_the_cluster_final_fit_on_all_rows_and_a_held_out_slice_confirms(pipeline, built, cluster, tmp_path):
    from app.cli.model import train_command
    from app.model.compile import compile_model
    from app.scoring.db import connect

    _root, _sources, out, db, _output = built
    model = tmp_path / "model"
    args = ["--db", str(db), "--model", str(model), "--features", str(out), "--scheduler", cluster.scheduler_address]
    args += ["--quick", "--candidates", "lightgbm", "--sample-rows", "1500", "--seed", "7"]
    res = CliRunner().invoke(train_command, args)
    assert res.exit_code == 0, res.output
    m = json.loads((model / "manifest.json").read_text())
    d = m["distributed"]
    labelled = len(rows(pipeline.db, "SELECT client_id FROM labels"))
    assert d["clients"] == labelled and d["held_out_rows"] == round(labelled * 0.1)
    assert d["final_fit"] == "cluster" and d["final_rows"] == labelled - d["held_out_rows"]
    assert m["metrics"]["n_train"] == 1500  # the nested figures come from the sample, as on one machine
    assert d["held_out"]["rows"] == d["held_out_rows"] and 0.6 < d["held_out"]["auc"] <= 1
    assert "held-out slice (258 clients" in res.output
    # the sample's own (one-machine) fit, which the cluster fit replaced, scored on the same clients beside it
    assert 0.6 < d["held_out"]["sample_fit_auc"] <= 1 and "the sample's own fit: AUC" in res.output
    assert m["data_fingerprint"] == dict(rows(db, "SELECT key, value FROM meta"))["data_fingerprint"]
    # the same compiled library and SQL functions as one machine
    compile_model(model, progress=False)
    conn = connect(db, model)
    try:
        scores = [r[0] for r in conn.execute("SELECT score(client_id) FROM features")]
    finally:
        conn.close()
    assert len(scores) == 3000 and all(0 < s < 1 for s in scores)


@given(
    n=st.integers(40, 400),
    share=st.floats(0.05, 0.45),
    sample=st.integers(100, 500),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_held_out_and_sample_are_disjoint_and_stratified(n, share, sample, seed):
    from app.model.distributed import split_clients

    y = (np.arange(n) % 5 == 0).astype(np.int8)  # 20 % positives
    held, samp = split_clients(y, share, sample, seed)
    assert not (held & samp).any()
    assert samp.sum() == min(sample, n - held.sum())
    for mask in (held, samp):
        if mask.sum() >= 10:
            assert abs(y[mask].mean() - 0.2) <= 2 / mask.sum() + 1e-9  # a row of rounding in each of two splits
