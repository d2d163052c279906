"""The officer's client page load, two versions of the dashboard in one run: this tree and another git revision
(default `main`), each a `credit ui` process against the same `credit serve` of this tree, over one pipeline.

    .venv/bin/python -m benchmarks.bench_ui_load [--base main] [--rounds 3] [--pipeline DIR]

Time measured in headless chromium: from the navigation to `/?client_id=N` until the decision badge is visible;
the two dashboards take turns (base, this, base, this, ...) so a load change on a shared machine hits both; the
best of `--rounds` navigations each, and their ratio. The base revision is exported with `git archive` into a
temporary folder (nothing in the repository changes) and runs with this tree's virtual environment. Without
`--pipeline` (a folder with credit.db and model/), a 3,000-client pipeline is generated, ingested, trained and
compiled first (minutes). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, machine

sys.path.insert(0, str(ROOT / "tests"))

from apiserver import ADMIN, ADMIN_KEY, ApiServer  # noqa: E402
from uiserver import UiServer, login  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def export(revision: str, dest: Path) -> Path:
    """The tree of `revision` in `dest` (git archive: the repository is only read)."""
    data = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def pipeline(folder: Path) -> tuple[Path, Path]:
    from app.data.ingest import ingest
    from app.data.synthetic import generate
    from app.model.compile import compile_model
    from app.model.train import train

    raw, db, model_dir = folder / "raw", folder / "credit.db", folder / "model"
    generate(raw, n_clients=3000, seed=7)
    ingest(raw, db, progress=False)
    train(db, model_dir, seed=7, quick=True, progress=False)
    compile_model(model_dir, progress=False)
    return db, model_dir


def load_time(pg, url: str) -> float:
    t0 = time.perf_counter()
    pg.goto(url)
    pg.get_by_test_id("decision").wait_for(state="visible")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="the git revision to compare with (default main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pipeline", type=Path, help="a folder with credit.db and model/ (default: build one)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        tmp_path = Path(tmp)
        base_tree = export(args.base, tmp_path / "base")
        if args.pipeline:
            db, model_dir = args.pipeline / "credit.db", args.pipeline / "model"
        else:
            db, model_dir = pipeline(tmp_path / "pipeline")
        with ApiServer(db, model_dir) as api:
            import httpx

            listing = httpx.get(api.url + "/clients", params={"limit": 1}, headers=ADMIN, timeout=30)
            cid = listing.json()["client_ids"][0]
            this_ui = UiServer(api.url, ADMIN_KEY, lang="fr")
            base_ui = UiServer(api.url, ADMIN_KEY, lang="fr")
            base_ui.cwd = base_tree  # `python -m app.cli.main` imports app/ and ui/ from its working folder
            with this_ui, base_ui, sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                pages = {}
                for name, server in (("base", base_ui), ("this", this_ui)):
                    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
                    pg = context.new_page()
                    pg.set_default_timeout(120_000)
                    login(pg, server.url, "agent")
                    load_time(pg, f"{server.url}/?client_id={cid}")  # warm-up: first explanation, first imports
                    pages[name] = (pg, server.url)
                times: dict[str, list[float]] = {"base": [], "this": []}
                for _ in range(args.rounds):
                    for name, (pg, url) in pages.items():
                        times[name].append(load_time(pg, f"{url}/?client_id={cid}"))
                browser.close()
    best = {k: min(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "bench": "ui_client_page_load",
                "base": args.base,
                "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
                "best": {k: round(v, 3) for k, v in best.items()},
                "ratio_this_over_base": round(best["this"] / best["base"], 3),
                "loadavg": os.getloadavg(),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
