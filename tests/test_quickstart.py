"""The README's Quickstart, run as printed in a fresh clone: `./dev demo`, then the second terminal's commands,
with a PATH that does not hold the virtual environment (as for a new user), then Ctrl-C: exit 0, no error line.

Small and fast on purpose through documented settings only (CREDIT_CLIENTS, free ports); the package cache
is the machine's, so the install is the warm-cache case. The clone is of the committed HEAD."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from needs import needs

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quickstart_blocks() -> list[list[str]]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [[ln.split("  #")[0].strip() for ln in b.splitlines() if ln.strip()] for b in blocks]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_quickstart_is_what_this_test_runs():
    first, second = quickstart_blocks()
    assert first == ["./dev demo"]
    assert second[0].startswith("./dev credit ") and second[1] == ". .venv/bin/activate"
    assert any(c.startswith("credit ") for c in second) and "just --list" in second


@pytest.mark.slow
@needs("git", "apt-get install git")
def test_quickstart_commands_as_printed_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin and ".venv" not in p)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "VIRTUAL_ENV", "PYTEST_"))}
    env.update(PATH=path, CREDIT_CLIENTS="1500", CREDIT_PORT=str(_free_port()), CREDIT_UI_PORT=str(_free_port()))
    first, second = quickstart_blocks()
    log = tmp_path / "demo.log"
    with log.open("w") as fh:
        demo = subprocess.Popen(
            # `exec`: the wrapper shell stands for the user's terminal shell, which is not in the job's process group
            ["sh", "-c", "exec " + first[0]],
            cwd=clone,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 900
        while "Ctrl-C stops both." not in log.read_text():
            assert demo.poll() is None, f"the demo stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the demo did not come up:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        # the second terminal: one shell, as typed (the activation lasts for the following lines)
        script = "set -e\n" + "\n".join(second) + "\n"
        out = subprocess.run(["sh", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "probability of default" in out.stdout
        assert "Available recipes:" in out.stdout and "demo" in out.stdout
        assert re.search(r"^\s*\d+\s+0\.\d+\s+(accept|refuse)$", out.stdout, re.MULTILINE)  # the SQL result rows
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole foreground group
        code = demo.wait(60)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "error:" not in text.lower().replace("error: 0", ""), text[-3000:]
    assert "BuildBackendWarning" not in text and "Warning:" not in text, text[:3000]
    assert re.search(r"dev: \[\d/3\]", text)  # the install's progress lines
