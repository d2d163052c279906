"""`credit bench`: runs the suite in benchmarks/ (from a checkout of the repository)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli.options import command

ROOT = Path(__file__).resolve().parents[2]


@command("bench")
@click.option("--quick", is_flag=True, help="Short correctness pass: every engine runs and agrees with LightGBM.")
@click.option("--full", is_flag=True, help="Also ingest at full Kaggle scale (307,511 clients).")
@click.option(
    "--only", multiple=True, help="Run only these parts (inference, sql, http, explain, drift, ingest, dask)."
)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for results.json.")
def bench_command(quick: bool, full: bool, only: tuple[str, ...], out: str | None) -> None:
    """Run the benchmark suite and write benchmarks/results.json and benchmarks/README.md."""
    if not (ROOT / "benchmarks" / "run.py").exists():
        raise click.ClickException("benchmarks/ not found: run `credit bench` from a checkout of the repository")
    sys.path.insert(0, str(ROOT))
    from benchmarks import run

    argv = (["--quick"] if quick else []) + (["--full"] if full else [])
    argv += ["--only", *only] if only else []
    argv += ["--out", out] if out else []
    raise SystemExit(run.main(argv))
