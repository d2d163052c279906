"""Replicas judged together: each replica's operational store exported to Parquet with a high-water mark, merged
on Dask into one store that drift and performance read; no log row counted twice or lost, through overlapping
exports and crashes in the middle of an export and of a merge."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from app import store
from app.cli.distributed import logs_command
from app.monitoring.outcomes import UPSERT_SQL
from app.monitoring.replicas import ReplicaLogError, export_replica_log, merge_replica_logs, parts
from app.store import predlog
from app.store.predlog import LogRow

P = 4  # features per vector


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
    ) as c:
        yield c


class Replica:
    """A replica's own operational store, written by the API's log writer."""

    def __init__(self, path, name: str) -> None:
        self.path, self.name = path, name
        self.conn = store.open_store(path)
        predlog.prepare(self.conn)
        self.ts = 1_700_000_000.0

    def serve(self, clients) -> None:
        rows = []
        for c in clients:
            self.ts += 1.0
            stored = c % 2 == 0  # a stored client: its vector kept once per data version
            rows.append(
                LogRow(
                    ts=self.ts,
                    request_id=predlog.new_request_id(),
                    client_id=int(c) if stored else None,
                    features=np.full(P, c, np.float32).tobytes(),
                    probability=(c % 97) / 100,
                    decision="refuse" if c % 3 == 0 else "accept",
                    model_id="m1",
                    latency_ms=1.0,
                    role="admin",
                    endpoint="GET /clients/{id}/score" if stored else "POST /score",
                    data_version="v1" if stored else None,
                )
            )
        predlog.write(self.conn, rows)

    def outcome(self, client_id: int, defaulted: int, observed_at: float) -> None:
        self.conn.execute(UPSERT_SQL, (client_id, defaulted, observed_at, "api:admin", observed_at))

    def request_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT request_id FROM prediction_log")}


def merged_ids(path) -> list[str]:
    conn = store.open_store(path, readonly=True)
    try:
        return [r[0] for r in conn.execute("SELECT request_id FROM prediction_log")]
    finally:
        conn.close()


def test_two_replicas_overlapping_exports_and_crashes_count_every_row_once(tmp_path, cluster):
    logs, merged = tmp_path / "logs", tmp_path / "merged.db"
    a, b = Replica(tmp_path / "a.db", "api-a"), Replica(tmp_path / "b.db", "api-b")
    addr = cluster.scheduler_address

    def merge(**kw):
        return merge_replica_logs(logs, merged, scheduler=addr, progress=False, **kw)

    a.serve(range(1, 121))
    b.serve(range(101, 181))  # clients 101-120 scored at both replicas: the same vectors, kept once
    a.outcome(110, 1, 1_700_000_500.0)
    b.outcome(110, 0, 1_700_000_900.0)  # the later observation wins wherever it was recorded
    b.outcome(150, 1, 1_700_000_900.0)
    for r in (a, b):
        export_replica_log(r.path, logs, r.name)
    assert merge()["rows"] == 200

    # overlapping exports: a re-export from an older id, and one with nothing new
    a.serve(range(121, 171))
    export_replica_log(a.path, logs, a.name, since_id=100)
    assert export_replica_log(a.path, logs, a.name)["log_rows"] == 0
    ranges = [(f, t) for f, t, _p in parts(logs / a.name, "log")]
    assert ranges == [(1, 120), (101, 170)]
    assert merge()["added"]["api-a"]["log"] == 50

    # a crash in the middle of an export: the vectors file is written, the log file is not (only a temporary)
    b.serve(range(181, 211))

    def crash(path):
        if path.name.startswith("log-"):
            raise OSError("killed")

    with pytest.raises(OSError, match="killed"):
        export_replica_log(b.path, logs, b.name, _fail_before_rename=crash)
    assert list((logs / b.name).glob(".log-*.tmp"))  # the half-done file is never read
    assert merge()["rows"] == 250
    export_replica_log(b.path, logs, b.name)  # the mark is the files: the lost export is redone
    assert merge()["rows"] == 280

    # a crash in the middle of a merge: replica A committed, B rolled back as a whole
    a.serve(range(500, 510))
    b.serve(range(600, 610))
    for r in (a, b):
        export_replica_log(r.path, logs, r.name)
    with pytest.raises(ReplicaLogError, match="simulated crash after merging api-a"):
        merge(_fail_after_replica="api-a")
    assert len(merged_ids(merged)) == 290
    assert merge()["added"]["api-b"]["log"] == 10
    again = merge()
    assert again["rows"] == 300 and all(c["log"] == 0 for c in again["added"].values())

    got = merged_ids(merged)
    assert len(got) == len(set(got)) == 300 and set(got) == a.request_ids() | b.request_ids()

    # one view: drift reads every row's exact scored vector; performance pairs the merged outcomes
    from app.monitoring.drift import load_window
    from app.monitoring.performance import join

    conn = store.open_store(merged, readonly=True)
    try:
        X, scores, window = load_window(conn, P)
        assert window["rows"] == 300 and X.shape == (300, P)
        assert sorted(X[:, 0].tolist()) == sorted(
            float(c) for c in [*range(1, 171), *range(101, 211), *range(500, 510), *range(600, 610)]
        )
        joined = join(conn)
        outcome = dict(conn.execute("SELECT client_id, defaulted FROM outcomes").fetchall())
    finally:
        conn.close()
    assert outcome == {110: 0, 150: 1}
    assert sorted(joined.client_id.tolist()) == [110, 150]


def test_cli_export_and_merge_and_a_bad_replica_name(tmp_path, cluster):
    a = Replica(tmp_path / "a.db", "api-1")
    a.serve(range(1, 11))
    runner = CliRunner()
    res = runner.invoke(
        logs_command, ["export", "--replica", "api-1", "--out", str(tmp_path / "logs"), "--log-db", str(a.path)]
    )
    assert res.exit_code == 0, res.output
    assert "10 log rows and 5 vectors exported" in res.output
    merged = tmp_path / "all.db"
    args = ["merge", "--logs", str(tmp_path / "logs"), "--log-db", str(merged), "--no-progress"]
    res = runner.invoke(logs_command, [*args, "--scheduler", cluster.scheduler_address])
    assert res.exit_code == 0, res.output
    assert "api-1: +10 log rows, +5 vectors" in res.output and "10 log rows from 1 replicas" in res.output
    res = runner.invoke(logs_command, ["export", "--replica", "../x", "--out", str(tmp_path), "--log-db", str(a.path)])
    assert res.exit_code == 1 and "replica name '../x'" in res.output


def test_a_damaged_export_file_is_refused_and_nothing_is_merged_from_it(tmp_path, cluster):
    a = Replica(tmp_path / "a.db", "api-1")
    a.serve(range(1, 11))
    export_replica_log(a.path, tmp_path / "logs", "api-1")
    (_f, _t, path) = parts(tmp_path / "logs" / "api-1", "log")[0]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ReplicaLogError, match=r"api-1.*unreadable Parquet"):
        merge_replica_logs(tmp_path / "logs", tmp_path / "m.db", scheduler=cluster.scheduler_address, progress=False)
    assert merged_ids(tmp_path / "m.db") == []
