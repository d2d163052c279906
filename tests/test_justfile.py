"""The justfile's long-running recipes hand signals to the server: `kill` of `just serve` stops `credit serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from apiserver import KEYS, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_sigterm_to_just_serve_stops_the_server(pipeline):
    port = free_port()
    bindir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", CREDIT_API_KEYS=KEYS)
    cmd = [str(bindir / "just"), "serve", "--db", str(pipeline.db), "--model", str(pipeline.model_dir)]
    cmd += ["--port", str(port)]
    just = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("just serve did not start the API")
        server = psutil.Process(just.pid).children(recursive=True)
        assert server, "no server process under just"
        just.send_signal(signal.SIGTERM)
        just.wait(30)
        _gone, alive = psutil.wait_procs(server, timeout=30)
        assert alive == [], f"left running after SIGTERM to just: {[p.cmdline() for p in alive]}"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        if just.poll() is None:
            just.kill()


def test_dev_runs_credit_directly_and_recipes_describe_themselves_for_users():
    """`./dev credit ...` works without the venv on PATH; `./dev demo|serve|ui` bypass just (a requested stop
    exits 0 instead of just's "interrupted by SIGTERM", 143); recipe comments are for users."""
    dev = (ROOT / "dev").read_text()
    assert "credit) shift; exec .venv/bin/credit" in dev
    assert "demo | serve | ui) exec .venv/bin/credit" in dev
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    if (ROOT / ".venv" / "bin" / "credit").exists():
        out = subprocess.run([str(ROOT / "dev"), "credit", "--version"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=900)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "credit, version" in out.stdout
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "just"), "--list"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    for line in listing.splitlines()[1:]:
        assert "exec" not in line and "`" not in line, line  # no implementation notes
    assert "# the main job" in listing
