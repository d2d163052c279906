"""`just audit`: pip-audit on requirements.lock, verdict first. The vulnerability service cannot be reached from
here, so pip-audit itself is replaced by a script printing what it prints (the edge that cannot run here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FAKE = """#!/bin/sh
echo "$@" > "$AUDIT_ARGS"
echo "Found 1 known vulnerability in 1 package"
echo "Name Version ID Fix Versions"
echo "oldpkg 1.0 PYSEC-0000-1 1.1"
echo "Name Skip Reason"
echo "foo Dependency not found on PyPI and could not be audited: foo (1.0)"
echo "bar Dependency not found on PyPI and could not be audited: bar (2.0)"
exit 1
"""


def test_audit_reads_the_lock_and_reports_the_verdict_and_what_was_not_audited(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "pip-audit"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(ROOT / "justfile", work / "justfile")
    (work / "requirements.lock").write_text("foo==1.0\nbar==2.0\noldpkg==1.0\n")
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "AUDIT_ARGS": str(tmp_path / "args")}
    just = Path(sys.executable).parent / "just"
    out = subprocess.run([str(just), "audit"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr  # reports, never fails the test run
    lines = out.stdout.splitlines()
    assert lines[0] == "pip-audit: findings below"
    assert lines[1] == "Found 1 known vulnerability in 1 package"
    assert "pip-audit: 2 of 3 locked packages could not be audited (vulnerability service unreachable?)" in lines
    assert "-r requirements.lock --no-deps" in (tmp_path / "args").read_text()
    assert "PYSEC-0000-1" in (work / ".audit.txt").read_text()


NOTHING_LOOKED_UP = """#!/bin/sh
echo "No known vulnerabilities found"
echo "Name Skip Reason"
echo "foo Dependency not found on PyPI and could not be audited: foo (1.0)"
echo "bar Dependency not found on PyPI and could not be audited: bar (2.0)"
exit 0
"""


def test_audit_says_not_audited_when_nothing_could_be_looked_up(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "pip-audit"
    fake.write_text(NOTHING_LOOKED_UP)
    fake.chmod(0o755)
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(ROOT / "justfile", work / "justfile")
    (work / "requirements.lock").write_text("foo==1.0\nbar==2.0\n")
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    just = Path(sys.executable).parent / "just"
    out = subprocess.run([str(just), "audit"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "No known vulnerabilities" not in out.stdout
    assert out.stdout.splitlines()[0].startswith("pip-audit: not audited: none of the 2 locked packages")
