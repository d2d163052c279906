"""Install a challenger beside the champion, promote it, roll back: shorthands for app.scoring.serving.ServingFolder
(the one owner of the serving folder: its layout, lock, journal and history), plus two readers.

- `install_challenger(src, serving, compile_fn)`: compile the model trained in `src` into a new bundle of `serving`
  (same parity gates as `credit compile`), verify it, point `challenger` at it; all or nothing, under the lock.
- `promote(serving)` / `rollback(serving)`: the guarded switch of the champion link (app/scoring/serving.py).
Pass `store` (the operational store's path) to record the history the rollback walks back along.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from app.scoring import layout
from app.scoring.bundle import ModelBundle, ModelError, read_manifest
from app.scoring.serving import ServingFolder

__all__ = ["describe", "install_challenger", "promote", "rollback", "thresholds"]


def install_challenger(
    src: Path | str, serving: Path | str, compile_fn: Callable[..., dict], store: Path | str | None = None
) -> ModelBundle:
    """Compile the model trained in `src` into a new bundle of `serving` and make it the challenger."""
    return ServingFolder(serving, store).install_challenger(src, compile_fn)


def promote(serving: Path | str, store: Path | str | None = None) -> tuple[str, str]:
    """Make the challenger the champion; returns (old champion id, new champion id)."""
    return ServingFolder(serving, store).promote()


def rollback(serving: Path | str, store: Path | str | None = None) -> tuple[str, str]:
    """Go back one champion; returns (rolled-back id, restored id)."""
    return ServingFolder(serving, store).rollback()


def describe(serving: Path | str) -> dict[str, str | None]:
    """role -> model id (None when absent), for `credit promote --status`."""
    return ServingFolder(serving).status()


def thresholds(serving: Path | str) -> dict[str, float]:
    """model id -> threshold of every bundle of a serving folder (and of a plain folder's own model): the
    challenger's decision rule for `credit performance`'s comparison (its decisions are not logged)."""
    serving = Path(serving)
    folders = [serving]
    root = serving / layout.BUNDLES
    if root.is_dir():
        folders += [f for f in root.iterdir() if f.is_dir() and not f.name.startswith(".")]
    out: dict[str, float] = {}
    for folder in folders:
        with contextlib.suppress(ModelError):
            manifest = read_manifest(folder)[0]
            out[manifest.model_id] = float(manifest.threshold)
    return out
