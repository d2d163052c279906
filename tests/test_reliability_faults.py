"""Faults: kill -9 and SIGTERM under load, broken model files, mismatched features, a read-only or full disk,
and 50 start/stop cycles of the app in one process. The rule everywhere: a score that was answered is a score
that was logged, and a score that cannot be trusted is a 503, never a number.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import apsw
import httpx
import psutil
import pytest
from apiserver import ADMIN, KEYS, OFFICER, ApiServer, copy_pipeline
from loadgen import BackgroundLoad, client_score_requests, db_state, integrity_check, kill_tree, log_db, log_rows


def first_ids(db: Path, n: int = 200) -> list[int]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT ?", (n,))]
    finally:
        conn.close()


def assert_error(r: httpx.Response, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str) and body["error"], body
    assert "Traceback" not in r.text
    return body


def assert_all_answered_are_logged(report, db: Path) -> None:
    logged = log_rows(db)
    served = [r.request_id for r in report.ok]
    assert None not in served
    missing = [rid for rid in served if rid not in logged]
    assert missing == [], f"{len(missing)} answered requests missing from prediction_log"


# ---- kill -9 under load ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_under_load_loses_no_answered_request(pipeline_copy, workers):
    data = pipeline_copy
    ids = first_ids(data.db)
    rng = random.Random(1234 + workers)
    total_ok = 0
    for trial in range(2):
        api = ApiServer(data.db, data.model_dir, workers=workers).start()
        try:
            with BackgroundLoad(api.url, client_score_requests(ids), headers=OFFICER, connections=16, duration=30,
                                timeout=10) as load:  # fmt: skip
                load.wait_for(rng.randint(5, 60))
                time.sleep(rng.uniform(0.0, 0.5))
                status = kill_tree(api.proc.pid, signal.SIGKILL)
                time.sleep(0.3)
                load.stop.set()
                report = load.join()
        finally:
            api.stop()
        assert status.get(api.proc.pid) == -signal.SIGKILL, (trial, status)
        assert len(status) >= 1 + (workers if workers > 1 else 0), status  # the worker processes died too
        assert integrity_check(log_db(data.db)) == ["ok"], trial
        assert_all_answered_are_logged(report, data.db)
        total_ok += len(report.ok)
        print(f"kill -9 trial {trial} (workers={workers}): {len(report.ok)} answered, {len(report.errors)} cut off")
    assert total_ok > 0
    # and the database still serves after the crashes
    with ApiServer(data.db, data.model_dir) as api, api.client(headers=OFFICER) as http:
        assert http.get(f"/clients/{ids[0]}/score").status_code == 200


# ---- SIGTERM under load ---------------------------------------------------------------------------------------

GRACE_SECONDS = 10.0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_finishes_in_flight_requests_and_exits_0(pipeline_copy, workers):
    data = pipeline_copy
    ids = first_ids(data.db)
    api = ApiServer(data.db, data.model_dir, workers=workers).start()
    try:
        with BackgroundLoad(api.url, client_score_requests(ids), headers=OFFICER, connections=16, duration=30,
                            timeout=20) as load:  # fmt: skip
            load.wait_for(50)
            t_term = time.monotonic()
            api.proc.send_signal(signal.SIGTERM)
            try:
                rc = api.proc.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                rc = None
            exit_s = time.monotonic() - t_term
            load.stop.set()
            report = load.join()
    finally:
        if api.proc.poll() is None:
            kill_tree(api.proc.pid)
        api.stop()
    output = api.output()
    assert rc == 0, (rc, exit_s, output[-2000:])
    assert exit_s < GRACE_SECONDS
    # a ConnectError means the TCP connection was never made, so the request never reached the server (the
    # client may start a request a little before the signal and connect after the listener closed): not in flight
    in_flight = [r for r in report.results if r.sent_at < t_term and not (r.error or "").startswith("ConnectError")]
    never_sent = sum(1 for r in report.results if r.sent_at < t_term and (r.error or "").startswith("ConnectError"))
    failed = [(r.status, r.error, round((t_term - r.sent_at) * 1000, 1)) for r in in_flight if r.status != 200]
    print(
        f"SIGTERM (workers={workers}): exit {rc} after {exit_s:.2f}s; {len(in_flight)} requests sent before it"
        f" ({never_sent} more never connected)"
    )
    assert "Traceback" not in output
    assert_all_answered_are_logged(report, data.db)
    assert integrity_check(log_db(data.db)) == ["ok"]
    assert failed == [], f"{len(failed)} requests sent before SIGTERM did not get a 200: {failed[:5]}"


def _get(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {OFFICER['Authorization']}\r\n\r\n".encode())


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body, read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_idle_keep_alive_connections(pipeline_copy, workers):
    """After SIGTERM a request written on an idle keep-alive connection still gets its answer (with Connection:
    close), new connections are refused, and the server exits 0 once the connection is gone."""
    data = pipeline_copy
    cid = first_ids(data.db, 1)[0]
    api = ApiServer(data.db, data.model_dir, workers=workers).start()
    conns: list[socket.socket] = []
    try:
        conns += [socket.create_connection(("127.0.0.1", api.port), timeout=10) for _ in range(4)]
        for sock in conns:
            _get(sock, "/healthz")
            assert _read_response(sock)[0] == 200
        api.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # uvicorn alone closes idle keep-alive connections at once
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", api.port), timeout=2)
        for sock in conns:
            _get(sock, f"/clients/{cid}/score")
            status, headers, body = _read_response(sock)
            assert status == 200, body
            assert headers.get("connection") == "close"
            assert json.loads(body)["client_id"] == cid
            assert sock.recv(1) == b""  # then the server closes the connection
        assert api.proc.wait(10) == 0
    finally:
        for sock in conns:
            sock.close()
        if api.proc.poll() is None:
            kill_tree(api.proc.pid)
        api.stop()
    assert "Traceback" not in api.output()
    assert integrity_check(log_db(data.db)) == ["ok"]


# ---- broken model folder --------------------------------------------------------------------------------------


def _lib(model_dir: Path) -> Path:
    return model_dir / json.loads((model_dir / "manifest.json").read_text())["library"]["file"]


def _edit_manifest(model_dir: Path, fn) -> None:
    path = model_dir / "manifest.json"
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


def _flip(path: Path) -> None:
    b = bytearray(path.read_bytes())
    mid = len(b) // 2
    b[mid : mid + 64] = bytes(x ^ 0xFF for x in b[mid : mid + 64])
    path.write_bytes(bytes(b))


def _swap_features(m: dict) -> None:
    f = m["features"]
    f[0], f[1] = f[1], f[0]


CORRUPTIONS = {
    "so_bytes_flipped": lambda d: _flip(_lib(d)),
    "so_truncated": lambda d: _lib(d).write_bytes(_lib(d).read_bytes()[:4096]),
    "so_missing": lambda d: _lib(d).unlink(),
    "so_empty": lambda d: _lib(d).write_bytes(b""),
    "manifest_truncated": lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text()[:200]),
    "manifest_missing": lambda d: (d / "manifest.json").unlink(),
    "manifest_sha256_wrong": lambda d: _edit_manifest(d, lambda m: m["library"].update(sha256="0" * 64)),
    "manifest_model_id_wrong": lambda d: _edit_manifest(d, lambda m: m.update(model_id="f" * 64)),
    "manifest_features_swapped": lambda d: _edit_manifest(d, _swap_features),
    "manifest_feature_dropped": lambda d: _edit_manifest(d, lambda m: m.update(features=m["features"][:-1])),
    "manifest_threshold_edited": lambda d: _edit_manifest(d, lambda m: m.update(threshold=0.9)),
    "manifest_calibration_edited": lambda d: _edit_manifest(d, lambda m: m.update(calibration={"a": 2.0, "b": 0.0})),
    "model_txt_byte_changed": lambda d: (d / "model.txt").write_text((d / "model.txt").read_text() + " "),
}
# what /readyz must name for the corruptions the model bundle catches (app.scoring.bundle)
REASONS = {
    "manifest_threshold_edited": "threshold",
    "manifest_calibration_edited": "was edited after",
    "model_txt_byte_changed": "is not the model id",
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_broken_model_starts_but_is_not_ready_and_never_scores(pipeline, tmp_path, corruption):
    data = copy_pipeline(pipeline, tmp_path)
    cid = first_ids(data.db, 1)[0]
    names = json.loads((data.model_dir / "manifest.json").read_text())["features"]
    CORRUPTIONS[corruption](data.model_dir)
    with ApiServer(data.db, data.model_dir, wait_for="/healthz") as api, api.client(headers=OFFICER) as http:
        before = db_state(data.db)
        ready = assert_error(http.get("/readyz", headers=ADMIN), 503)
        assert ready["error"].startswith("not ready") and len(ready["error"]) > len("not ready: "), ready
        assert REASONS.get(corruption, "") in ready["error"], ready
        public = assert_error(http.get("/readyz", headers={"Authorization": ""}), 503)  # no key: a reason code only
        assert public["error"] == "not ready" and public["detail"]["reason"] != "not_ready", public
        assert str(data.root) not in json.dumps(public)
        assert_error(http.get(f"/clients/{cid}/score"), 503)
        assert_error(http.get(f"/clients/{cid}/explain"), 503)
        assert_error(http.post("/score", json={"features": {names[0]: 1.0, names[1]: 2.0}}), 503)
        assert_error(http.post("/score/batch", json={"client_ids": [cid]}), 503)
        assert_error(http.post("/score/batch", json={"applicants": [{"features": {}}]}), 503)
        assert db_state(data.db)["log_rows"] == before["log_rows"]
        output = api.output()
    assert "Traceback" not in output


# ---- features table that does not match the model -------------------------------------------------------------


def _rewrite_blobs(db: Path, where: str, n_floats_delta: int) -> None:
    conn = apsw.Connection(str(db))
    try:
        with conn:
            rows = conn.execute(f"SELECT client_id, x FROM features WHERE {where}").fetchall()
            for cid, x in rows:
                x = x[: len(x) - 4] if n_floats_delta < 0 else x + b"\0\0\0\0"
                conn.execute("UPDATE features SET x = ? WHERE client_id = ?", (x, cid))
    finally:
        conn.close()


@pytest.mark.parametrize("delta", [-1, +1])
def test_features_table_of_the_wrong_length_is_not_ready_and_never_scores(pipeline, tmp_path, delta):
    data = copy_pipeline(pipeline, tmp_path)
    cid = first_ids(data.db, 1)[0]
    _rewrite_blobs(data.db, "1", delta)
    with ApiServer(data.db, data.model_dir, wait_for="/healthz") as api, api.client(headers=OFFICER) as http:
        before = db_state(data.db)
        assert_error(http.get("/readyz"), 503)
        assert_error(http.get(f"/clients/{cid}/score"), 503)
        assert_error(http.post("/score/batch", json={"client_ids": [cid]}), 503)
        assert db_state(data.db)["log_rows"] == before["log_rows"]
        assert "Traceback" not in api.output()


def test_one_row_of_the_wrong_length_is_a_503_for_that_client_only(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path)
    ids = first_ids(data.db, 50)
    good, bad = ids[0], ids[25]  # not the first or last row (readiness samples those)
    _rewrite_blobs(data.db, f"client_id = {bad}", -1)
    with ApiServer(data.db, data.model_dir) as api, api.client(headers=OFFICER) as http:
        before = db_state(data.db)
        assert_error(http.get(f"/clients/{bad}/score"), 503)
        assert_error(http.post("/score/batch", json={"client_ids": [good, bad]}), 503)
        assert db_state(data.db)["log_rows"] == before["log_rows"]  # nothing half-answered
        assert http.get(f"/clients/{good}/score").status_code == 200
        assert "Traceback" not in api.output()


# ---- the log cannot be written: read-only file system, full disk ----------------------------------------------


@contextlib.contextmanager
def tmpfs(size: str):
    mnt = Path(tempfile.mkdtemp(prefix="credit-tmpfs-"))
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        mnt.rmdir()
        # CI runs as root and must run this test; elsewhere (no root) it is skipped, saying why
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"cannot mount a tmpfs: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.25)
        with contextlib.suppress(OSError):
            mnt.rmdir()


def _prepare_log(db: Path) -> None:
    """Create the operational store beside `db`, checkpointed (so copying the main file copies it all)."""
    from app import store

    conn = store.open_store(log_db(db))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@pytest.mark.slow
def test_read_only_file_system_score_is_503_not_unlogged(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path)
    _prepare_log(data.db)
    for path in (data.db, log_db(data.db)):  # readable on a read-only file system without -shm
        conn = apsw.Connection(str(path))
        conn.execute("PRAGMA journal_mode = DELETE").fetchall()
        conn.close()
    cid = first_ids(data.db, 1)[0]
    with tmpfs(f"{data.db.stat().st_size * 2 + (1 << 20)}") as mnt:
        db = mnt / "credit.db"
        shutil.copy(data.db, db)
        shutil.copy(log_db(data.db), log_db(db))
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        before = db_state(db)
        with ApiServer(db, data.model_dir, wait_for="/healthz") as api, api.client(headers=OFFICER) as http:
            assert_error(http.get("/readyz"), 503)
            body = assert_error(http.get(f"/clients/{cid}/score"), 503)
            assert "log" in body["error"] or "database" in body["error"], body
            assert_error(http.post("/score", json={"features": {}}), 503)
            assert_error(http.post("/score/batch", json={"client_ids": [cid]}), 503)
            assert http.get(f"/clients/{cid}").status_code == 200  # reads still work
            assert "Traceback" not in api.output()
        assert db_state(db) == before


@pytest.mark.slow
def test_full_disk_score_is_503_and_every_answer_is_logged(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path)
    _prepare_log(data.db)
    ids = first_ids(data.db)
    size = data.db.stat().st_size + (384 << 10)
    with tmpfs(str(size)) as mnt:
        db = mnt / "credit.db"
        shutil.copy(data.db, db)
        statuses: dict[int, int] = {}
        served: list[str] = []
        with ApiServer(db, data.model_dir) as api, api.client(headers=OFFICER) as http:
            for i in range(3000):
                r = http.get(f"/clients/{ids[i % len(ids)]}/score")
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    served.append(r.json()["request_id"])
                else:
                    body = assert_error(r, 503)
                    assert body["error"] == "prediction log unavailable", body
                if statuses.get(503, 0) >= 20:
                    break
            assert http.get("/healthz").status_code == 200
            assert "Traceback" not in api.output()
        print(f"disk full ({size} bytes tmpfs): {statuses}")
        assert statuses.get(503, 0) >= 1, f"the disk never filled: {statuses}"
        assert set(statuses) <= {200, 503}
        logged = log_rows(db)
        assert [rid for rid in served if rid not in logged] == []
        assert integrity_check(log_db(db)) == ["ok"]


# ---- 50 start/stop cycles in one process ----------------------------------------------------------------------


def test_fifty_app_lifecycles_leak_no_file_descriptors_or_threads(pipeline, tmp_path):
    from litestar.testing import TestClient

    from app.config import Settings
    from app.service.api import create_app

    data = copy_pipeline(pipeline, tmp_path)
    cid = first_ids(data.db, 1)[0]
    settings = Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=KEYS, keys_file="")
    proc = psutil.Process()

    def cycle() -> None:
        app = create_app(settings)
        with TestClient(app) as client:
            assert client.get("/readyz").status_code == 200
            assert client.get(f"/clients/{cid}/score", headers=OFFICER).status_code == 200
            assert client.get(f"/clients/{cid}", headers=OFFICER).status_code == 200
            assert client.get("/monitoring/log", headers=ADMIN).status_code == 200

    for _ in range(3):  # warm up: imports, thread pools, caches
        cycle()
    gc.collect()
    time.sleep(0.2)
    fds0, threads0 = proc.num_fds(), threading.active_count()
    for _ in range(50):
        cycle()
    gc.collect()
    time.sleep(0.5)
    fds1, threads1 = proc.num_fds(), threading.active_count()
    print(f"50 lifecycles: fds {fds0} -> {fds1}, threads {threads0} -> {threads1}")
    assert fds1 <= fds0 + 2, (fds0, fds1)
    assert threads1 <= threads0 + 1, (threads0, threads1)


# ---- recovery and tampering (issue 18) -------------------------------------------------------------------------


@pytest.mark.slow
def test_read_only_store_recovers_at_the_next_readiness_check(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path)
    cid = first_ids(data.db, 1)[0]
    with tmpfs(f"{data.db.stat().st_size * 2 + (4 << 20)}") as mnt:
        db = mnt / "credit.db"
        shutil.copy(data.db, db)
        # ingest leaves the data file in rollback mode; a test run may have switched the shared copy to WAL,
        # and a WAL file cannot be opened on a read-only file system
        conn = apsw.Connection(str(db))
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with ApiServer(db, data.model_dir, wait_for="/healthz") as api, api.client(headers=OFFICER) as http:
            body = assert_error(http.get("/readyz", headers=ADMIN), 503)
            assert "log" in body["error"], body
            assert_error(http.get(f"/clients/{cid}/score"), 503)
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
            deadline = time.monotonic() + 15  # scoring re-runs the checks at most once a second while not ready
            while (r := http.get(f"/clients/{cid}/score")).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert http.get("/readyz").status_code == 200
            rid = r.json()["request_id"]
            assert "Traceback" not in api.output()
        assert rid in log_rows(db)


def test_library_rewritten_in_place_stops_scoring_at_once(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path)
    cid = first_ids(data.db, 1)[0]
    manifest = json.loads((data.model_dir / "manifest.json").read_text())
    lib = data.model_dir / manifest["library"]["file"]
    with ApiServer(data.db, data.model_dir) as api, api.client(headers=OFFICER) as http:
        assert http.get(f"/clients/{cid}/score").status_code == 200
        os.utime(lib)  # touched, same bytes: still serving
        assert http.get(f"/clients/{cid}/score").status_code == 200
        before = db_state(data.db)["log_rows"]
        with open(lib, "r+b") as fh:  # rewritten in place: same inode, other bytes
            fh.seek(0, os.SEEK_END)
            fh.write(b"\0" * 64)
        for _ in range(20):  # not one more score from the changed file
            assert_error(http.get(f"/clients/{cid}/score"), 503)
            assert_error(http.post("/score", json={"features": {}}), 503)
        body = assert_error(http.get("/readyz", headers=ADMIN), 503)
        assert "changed on disk" in body["error"], body
        assert db_state(data.db)["log_rows"] == before
        assert "Traceback" not in api.output()
