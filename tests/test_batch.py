"""Portfolio scoring on Dask: `credit export` + `credit score-batch` on a loopback LocalCluster."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from distributed import Client

from app.cli.batch import export_command, score_batch_command
from app.scoring.batch import (
    FEATURES_FILE,
    ModelPackage,
    export_features,
    run_batch,
    worker_model,
)
from app.scoring.bundle import ModelBundle

ROWS_PER_PARTITION = 700


@pytest.fixture(scope="module")
def src(pipeline):
    return pipeline


@pytest.fixture(scope="module")
def expected(src):
    """client_id -> probability, from CompiledModel.predict over load_matrix and from SQL score()."""
    from app.data.features import load_matrix
    from app.scoring.bundle import ModelBundle
    from app.scoring.db import connect

    conn = connect(src.db, src.model_dir)
    try:
        ids, X, _y, names = load_matrix(conn, labelled_only=False)
        sql = dict(conn.execute("SELECT client_id, score(client_id) FROM features"))
    finally:
        conn.close()
    model = ModelBundle.load(src.model_dir)
    assert names == model.feature_names
    prob = model.predict(np.ascontiguousarray(X, dtype=np.float32))
    return {"ids": ids, "X": X, "names": names, "prob": prob, "sql": sql, "model": model}


@pytest.fixture(scope="module")
def export_dir(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "features"
    export_features(src.db, out, rows_per_partition=ROWS_PER_PARTITION, progress=False)
    return out


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1") as c:
        yield c


def read_output(out: Path):
    files = sorted(out.glob("part-*.parquet"))
    table = pa.concat_tables(pq.read_table(f) for f in files)
    return table, files


def test_export_layout_and_content(src, expected, export_dir):
    manifest = json.loads((export_dir / FEATURES_FILE).read_text())
    n = len(expected["ids"])
    assert manifest["features"] == expected["names"]
    assert manifest["rows"] == n
    assert [p["file"] for p in manifest["partitions"]] == [
        f"part-{i:05d}.parquet" for i in range(-(-n // ROWS_PER_PARTITION))
    ]
    tables = [pq.read_table(export_dir / p["file"]) for p in manifest["partitions"]]
    assert all(t.num_rows <= ROWS_PER_PARTITION for t in tables)
    ids = np.concatenate([t.column("client_id").to_numpy() for t in tables])
    X = np.concatenate([np.stack(t.column("x").to_numpy(zero_copy_only=False)) for t in tables])
    xtype = tables[0].schema.field("x").type
    assert pa.types.is_fixed_size_list(xtype) and xtype.list_size == len(expected["names"])
    assert xtype.value_type == pa.float32()
    order = np.argsort(expected["ids"])
    np.testing.assert_array_equal(ids, expected["ids"][order])
    np.testing.assert_array_equal(X.view(np.uint32), expected["X"][order].view(np.uint32))  # bit-identical, NaNs too
    assert not list(export_dir.parent.glob(".features.tmp-*"))


def test_export_cli_replaces_previous_export_atomically(src, tmp_path):
    out = tmp_path / "exp"
    runner = CliRunner()
    for rows in (1000, 5000):
        res = runner.invoke(export_command, ["--db", str(src.db), "--out", str(out), "--rows-per-partition", str(rows)])
        assert res.exit_code == 0, res.output
    assert len(json.loads((out / FEATURES_FILE).read_text())["partitions"]) == len(list(out.glob("part-*.parquet")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    other = tmp_path / "not-an-export"
    other.mkdir()
    (other / "precious.txt").write_text("keep")
    res = runner.invoke(export_command, ["--db", str(src.db), "--out", str(other)])
    assert res.exit_code != 0 and "not a feature export" in res.output
    assert (other / "precious.txt").read_text() == "keep"


def test_score_batch_cli_matches_sql_and_rerun_is_idempotent(src, expected, export_dir, cluster, tmp_path):
    out = tmp_path / "scores"
    args = ["--input", str(export_dir), "--output", str(out), "--model", str(src.model_dir), "--workers", "2"]
    res = CliRunner().invoke(score_batch_command, args)  # the first call starts its own local cluster
    assert res.exit_code == 0, res.output
    assert "0 failed" in res.output
    assert "Dask: 2 workers on a local cluster" in res.output  # the cluster and its dashboard link are named
    table, files = read_output(out)
    assert table.schema.names == ["client_id", "probability", "decision", "model_id"]
    assert [str(t) for t in table.schema.types] == ["int64", "double", "string", "string"]
    got = dict(zip(table.column("client_id").to_pylist(), table.column("probability").to_pylist(), strict=True))
    assert len(got) == len(expected["ids"]) == table.num_rows
    want = dict(zip(expected["ids"].tolist(), expected["prob"].tolist(), strict=True))
    assert got == want  # bit-identical to CompiledModel.predict
    assert max(abs(got[c] - expected["sql"][c]) for c in got) <= 1e-12  # and to SQL score(client_id)
    model = expected["model"]
    dec = table.column("decision").to_pylist()
    assert dec == [model.decide(p) for p in table.column("probability").to_pylist()]
    assert set(table.column("model_id").to_pylist()) == {model.model_id}

    # the reruns are about the output folder, not the cluster: they use the module's (a LocalCluster a call costs
    # seconds of CPU to start and stop)
    args = [*args, "--scheduler", cluster.scheduler_address]
    mtimes = {f.name: f.stat().st_mtime_ns for f in files}
    res = CliRunner().invoke(score_batch_command, args)
    assert res.exit_code == 0, res.output
    assert f"0 partitions scored, {len(files)} already current" in res.output
    assert {f.name: f.stat().st_mtime_ns for f in out.glob("part-*.parquet")} == mtimes
    assert not list(out.glob(".*tmp"))

    # a deleted output partition is rescored, the others are skipped; --force rescores all
    files[1].unlink()
    res = CliRunner().invoke(score_batch_command, args)
    assert res.exit_code == 0 and "1 partitions scored" in res.output, res.output
    res = CliRunner().invoke(score_batch_command, [*args, "--force"])
    assert res.exit_code == 0 and f"{len(files)} partitions scored" in res.output, res.output
    assert read_output(out)[0].equals(table)


@pytest.mark.parametrize("how", ["garbage", "truncated-with-matching-manifest"])
def test_corrupted_partition_is_reported_and_exit_nonzero(src, export_dir, cluster, tmp_path, how):
    inp = tmp_path / "in"
    shutil.copytree(export_dir, inp)
    bad = inp / "part-00001.parquet"
    if how == "garbage":
        bad.write_bytes(b"not parquet at all" * 100)
    else:
        bad.write_bytes(bad.read_bytes()[:200])  # truncated; manifest hash updated, so Parquet itself fails
        import hashlib

        m = json.loads((inp / FEATURES_FILE).read_text())
        m["partitions"][1]["sha256"] = hashlib.sha256(bad.read_bytes()).hexdigest()
        (inp / FEATURES_FILE).write_text(json.dumps(m))
    out = tmp_path / "out"
    args = ["--input", str(inp), "--output", str(out), "--model", str(src.model_dir)]
    res = CliRunner().invoke(score_batch_command, [*args, "--scheduler", cluster.scheduler_address])
    assert res.exit_code == 1, res.output
    assert "1 partition(s) failed: part-00001.parquet" in res.output
    assert "FAILED part-00001.parquet" in res.output
    assert not (out / "part-00001.parquet").exists()
    n_parts = len(list(inp.glob("part-*.parquet")))
    assert len(list(out.glob("part-*.parquet"))) == n_parts - 1  # the others were scored


def test_tampered_library_is_refused_on_the_worker(src, export_dir, cluster, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(src.model_dir, model_dir, symlinks=True)
    so = model_dir / json.loads((model_dir / "manifest.json").read_text())["library"]["file"]
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0xFF
    so.write_bytes(bytes(data))
    out = tmp_path / "out"
    args = ["--input", str(export_dir), "--output", str(out), "--model", str(model_dir)]
    res = CliRunner().invoke(score_batch_command, [*args, "--scheduler", cluster.scheduler_address])
    assert res.exit_code == 1, res.output
    assert "refusing to load" in res.output  # the client verifies the bundle before shipping it
    assert not list(out.glob("part-*.parquet"))
    # and a worker refuses a package whose library bytes were changed on the way
    genuine = ModelPackage.from_bundle(ModelBundle.load(src.model_dir))
    tampered = dataclasses.replace(genuine, so_bytes=bytes(data))
    with pytest.raises(RuntimeError, match="refusing to load"), Client(cluster.scheduler_address) as client:
        client.submit(worker_model, tampered, pure=False).result()


def test_feature_names_must_match_the_model(src, export_dir, tmp_path):
    inp = tmp_path / "in"
    shutil.copytree(export_dir, inp)
    m = json.loads((inp / FEATURES_FILE).read_text())
    m["features"][0], m["features"][1] = m["features"][1], m["features"][0]
    (inp / FEATURES_FILE).write_text(json.dumps(m))
    args = ["--input", str(inp), "--output", str(tmp_path / "out"), "--model", str(src.model_dir)]
    res = CliRunner().invoke(score_batch_command, args)
    assert res.exit_code == 1
    assert "feature names" in res.output and "different order" in res.output


def test_each_worker_loads_the_library_once(src, export_dir, cluster, tmp_path):
    result = run_batch(export_dir, tmp_path / "o1", src.model_dir, scheduler=cluster.scheduler_address, progress=False)
    assert not result.failed and result.workers == 2
    run_batch(export_dir, tmp_path / "o2", src.model_dir, scheduler=cluster.scheduler_address, progress=False)

    def loaded():
        import app.scoring.batch

        return {model_id: str(m.library_path) for (model_id, _sha), m in app.scoring.batch._MODELS.items()}

    per_worker = cluster_run(cluster, loaded)
    model_id = expected_model_id(src)
    assert len(per_worker) == 2
    for models in per_worker.values():
        assert list(models) == [model_id]
        assert str(src.model_dir) not in models[model_id]  # loaded from the shipped copy, not the shared folder


def cluster_run(cluster, fn):
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        return client.run(fn)


def expected_model_id(src) -> str:
    return json.loads((Path(src.model_dir) / "manifest.json").read_text())["model_id"]
