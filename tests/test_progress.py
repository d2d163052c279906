"""Progress output: tqdm bars on a terminal, plain periodic lines in files and pipes (no carriage returns)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from app.progress import LineProgress, plain

BIN = Path(sys.executable).parent


def test_plain_lines_only_when_not_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert plain(io.StringIO()) and not plain(Tty())


def test_line_progress_writes_whole_lines_at_most_every_interval(monkeypatch):
    monkeypatch.setenv("CREDIT_PROGRESS_INTERVAL", "3600")
    out = io.StringIO()
    for _ in LineProgress(range(50_000), desc="rows", file=out):
        pass
    with LineProgress(total=10, desc="bytes", file=out, leave=False) as bar:
        bar.update(4)
        bar.update(6)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == [
        "rows: 0/50000 (0%) 00:00 elapsed",
        "rows: 50000/50000 (100%) 00:00 elapsed",
        "bytes: 0/10 (0%) 00:00 elapsed",
        "bytes: 10/10 (100%) 00:00 elapsed",
    ]


def test_credit_generate_into_a_log_file_has_no_bar_redraws(tmp_path):
    log = tmp_path / "log.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    with log.open("w") as fh:
        res = subprocess.run(
            [str(BIN / "credit"), "generate", "--clients", "300", "--out", str(tmp_path / "raw")],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=300,
        )
    text = log.read_text()
    assert res.returncode == 0, text
    assert "\r" not in text
    assert "generate: " in text and "(100%)" in text
