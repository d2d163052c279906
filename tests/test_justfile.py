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
