"""The serving model folder's layout: versioned bundles and the champion / challenger / previous links.

    compiled/                        settings.model_dir (CREDIT_MODEL_DIR)
      bundles/<id12>-<stamp>/        one immutable folder per installed model: model.txt, manifest.json,
                                     model-<id12>.so, score.so and challenger.so (links to it), reference files...
      champion   -> bundles/...      relative symlinks; `credit promote` switches the champion with ONE os.replace
      challenger -> bundles/...      (absent: no shadow scoring)
      previous   -> bundles/...      the champion before the last promote (`credit promote --rollback`)
      manifest.json -> champion/manifest.json, model.txt, score.so, reference.npy ...   the names readers used
                                     before, so they follow the champion too (e.g. `.load compiled/score`)

A folder without a `champion` link is a plain model folder (what `credit train` + `credit compile` write): it is
its own champion and nothing changes for it. `credit compile --challenger` first "adopts" such a folder: its
model files are hard-linked into bundles/ and the links above are made. Every change to the folder is made by
app/scoring/serving.py (ServingFolder: lock, journal, history); this module only reads links and writes one.
A role's folder is resolved once (os.path.realpath), so a reader takes every
file of a bundle from the same immutable folder even while `credit promote` runs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from app.scoring.filenames import CHALLENGER_LINK  # the sqlite3 shell derives sqlite3_challenger_init from it
from app.scoring.library import ModelError

BUNDLES = "bundles"
ROLES = ("champion", "challenger", "previous")

__all__ = ["BUNDLES", "CHALLENGER_LINK", "ROLES", "pointers", "role_dir", "set_link"]


def role_dir(model_dir: Path | str, role: str = "champion") -> Path | None:
    """The folder holding `role`'s bundle: the link's target resolved, or the folder itself for the champion of
    a plain model folder; None when the role is not installed."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    model_dir = Path(model_dir)
    link = model_dir / role
    if not os.path.lexists(link):
        return model_dir if role == "champion" else None
    target = Path(os.path.realpath(link))
    if not target.is_dir():
        raise ModelError(f"{link}: points to {os.readlink(link) if link.is_symlink() else link}, not a bundle folder")
    return target


def pointers(model_dir: Path | str) -> tuple[str | None, str | None]:
    """(champion, challenger) link targets as written (two readlink calls): what a running server compares to
    notice a promote or a newly installed challenger."""
    out: list[str | None] = []
    for role in ("champion", "challenger"):
        try:
            out.append(os.readlink(Path(model_dir) / role))
        except OSError:
            out.append(None)
    return out[0], out[1]


def set_link(model_dir: Path, name: str, target: str | None) -> None:
    """Point model_dir/name at `target` (relative text) with one atomic os.replace, or remove it (None)."""
    path = model_dir / name
    if target is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    tmp = model_dir / f".{name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # a failed switch leaves no stray link behind
        raise


def relative(model_dir: Path, bundle: Path) -> str:
    """The link text for a bundle folder inside model_dir/bundles."""
    bundle = Path(os.path.realpath(bundle))
    root = Path(os.path.realpath(model_dir / BUNDLES))
    if bundle.parent != root:
        raise ModelError(f"{bundle}: not a bundle of {model_dir} (expected a folder in {root})")
    return f"{BUNDLES}/{bundle.name}"
