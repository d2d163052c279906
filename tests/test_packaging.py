"""The wheel carries everything the product reads at run time: an installed copy works away from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RUNTIME_CHECK = """
import app, apsw
from app.data.ingest import read_sql
from app.scoring.db import VIEWS_SQL
from app.store import MIGRATIONS_DIR, migrations, open_store
conn = apsw.Connection(":memory:")
conn.execute(read_sql("schema.sql"))
open_store("store.db").close()
print(app.__file__, VIEWS_SQL.is_file(), len(migrations()) >= 1 and MIGRATIONS_DIR.is_dir())
"""


def source_tree(dest: Path) -> Path:
    """The project's files as git sees them (no build/ leftovers that could hide a missing file)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_symlink() or src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    return dest


@pytest.mark.integration
def test_installed_wheel_finds_its_sql_scripts(tmp_path):
    wheels = tmp_path / "wheels"
    source = source_tree(tmp_path / "source")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("pret_a_depenser-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"app/sql/{p.relative_to(ROOT / 'sql')}" for p in (ROOT / "sql").rglob("*.sql")} <= names
    assert {"app/scoring/native/score_ext.c", "app/data/kaggle_schema.json"} <= names

    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", RUNTIME_CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    module_file, views, predlog = out.stdout.split()
    assert Path(module_file).is_relative_to(target)  # the installed copy, not the checkout
    assert (views, predlog) == ("True", "True")
