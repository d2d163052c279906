"""Built things (a generated-ingested-trained-compiled pipeline, a compiled model) cached on disk, built once.

    root = cached("pipeline-3000-7-quick", {"clients": 3000, "seed": 7, "quick": True}, build)

The folder is CACHE / "<name>.<key>", where the key is a hash of the parameters and of every source file
under app/ (what builds the thing and what reads it): an edit to the code builds it again, so a test or a
benchmark never reads a model compiled by older code. A build runs in a private folder renamed into place
when it has finished, under a file lock, so that two processes (two pytest workers, the test session and the
benchmark pass it starts) build it once and never read a half-built folder. Older keys of the same name are
removed when a new one is built. CREDIT_BENCH_CACHE moves the cache (default benchmarks/.cache).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CREDIT_BENCH_CACHE") or ROOT / "benchmarks" / ".cache")
SOURCES = ROOT / "app"
SKIPPED_SUFFIXES = (".pyc", ".so", ".o")
DONE = "done"


def source_digest(sources: Path = SOURCES) -> str:
    """sha256 over the path and bytes of every source file under `sources`, through symbolic links (compiled files
    left out)."""
    h = hashlib.sha256()
    files = [Path(d) / f for d, _dirs, names in os.walk(sources, followlinks=True) for f in names]  # app/sql -> sql
    for path in sorted(files):
        if "__pycache__" in path.parts or path.suffix in SKIPPED_SUFFIXES:
            continue
        h.update(path.relative_to(sources).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def cache_key(params: dict, sources: Path = SOURCES) -> str:
    """12 hex digits: the parameters (as sorted JSON) and the source digest."""
    text = json.dumps(params, sort_keys=True, default=str) + "\n" + source_digest(sources)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached(
    name: str,
    params: dict,
    build: Callable[[Path], None],
    *,
    cache: Path | None = None,
    sources: Path = SOURCES,
) -> Path:
    """The folder cache/<name>.<key>, built by build(folder) the first time (build writes into the folder it is
    given, which is renamed into place afterwards). Safe against concurrent callers (a lock file per key)."""
    cache = Path(cache or CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f"{name}.{cache_key(params, sources)}"
    if (root / DONE).exists():
        return root
    with open(cache / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (root / DONE).exists():  # another process built it while this one waited
            return root
        work = cache / f"{root.name}.building-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)  # a build interrupted after its rename, before "done"
        work.mkdir()
        try:
            build(work)
            work.rename(root)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        (root / DONE).write_text(json.dumps(params, sort_keys=True, default=str))
        for old in cache.glob(f"{name}.*"):
            if old != root and old.is_dir() and len(old.name) == len(root.name) and not old.name.endswith(".lock"):
                shutil.rmtree(old, ignore_errors=True)
    return root
