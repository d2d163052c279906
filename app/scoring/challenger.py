"""Install a challenger beside the champion, promote it, roll back (the folder layout is app/scoring/layout.py).

- `install_challenger(src, serving, compile_fn)` copies the model trained in `src` into a new hidden folder of
  serving/bundles/, compiles it there with the same parity gates as `credit compile` (`compile_fn`), verifies it
  (ModelBundle.load; same features as the champion), renames the folder into place and points `challenger` at it.
- `promote(serving)`: verifies the challenger, points `previous` at the champion, then switches `champion` with
  ONE os.replace of a symlink (the only step servers act on), then removes `challenger`.
- `rollback(serving)`: the same switch back to `previous` (which then names the model rolled back from).
A bundle that fails verification is never pointed at; servers re-verify before they switch (app/service/state.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.scoring import layout
from app.scoring.bundle import MANIFEST, ModelBundle, ModelError, read_manifest
from app.scoring.filenames import SCORE_LINK

__all__ = ["adopt", "install_challenger", "promote", "rollback"]


def _files_to_copy(folder: Path, library: str | None) -> list[Path]:
    """Top-level regular files of a model folder, without other models' libraries, links, temp or hidden files."""
    out = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name.startswith(".") or entry.is_symlink() or not entry.is_file() or name.endswith(".tmp"):
            continue
        if name.endswith(".so") and name != library:
            continue
        out.append(entry)
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _finish_bundle(folder: Path, library: str) -> None:
    """score.so and challenger.so links to the library (for the sqlite3 shell's `.load`)."""
    for name in (SCORE_LINK, layout.CHALLENGER_LINK):
        layout.set_link(folder, name, library)


def adopt(serving: Path) -> Path:
    """Give a plain model folder the versioned layout (no-op when it has it); returns the champion's bundle."""
    serving = Path(serving)
    if os.path.lexists(serving / "champion"):
        return layout.role_dir(serving, "champion")  # type: ignore[return-value]
    bundle = ModelBundle.load(serving)  # verified before anything is linked
    root = serving / layout.BUNDLES
    root.mkdir(exist_ok=True)

    def fill(tmp: Path) -> ModelBundle:
        for src in _files_to_copy(serving, bundle.library_path.name):
            _link_or_copy(src, tmp / src.name)
        _finish_bundle(tmp, bundle.library_path.name)
        return ModelBundle.load(tmp)

    final = _publish(root, ".adopt-", fill)
    layout.set_link(serving, "champion", layout.relative(serving, final))
    layout.link_root_names(serving)
    return final


def _publish(root: Path, prefix: str, fill: Callable[[Path], ModelBundle]) -> Path:
    """A new bundle folder under `root`: `fill` writes and verifies it in a hidden temporary folder, which is then
    renamed to `<model id>-<time>` in one step (removed instead if anything fails)."""
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=prefix))
    try:
        bundle = fill(tmp)
        final = root / f"{bundle.model_id[:12]}-{_stamp()}"
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")


def install_challenger(src: Path | str, serving: Path | str, compile_fn: Callable[[Path], dict]) -> ModelBundle:
    """Compile the model trained in `src` into a new bundle of `serving` and make it the challenger."""
    src, serving = Path(src), Path(serving)
    if os.path.realpath(src) == os.path.realpath(serving):
        raise ModelError(
            f"{src}: the challenger must be trained in its own folder (e.g. `credit train --model models/next`), "
            f"not in the serving folder {serving}"
        )
    read_manifest(src)  # a clear error before anything is created
    champion = ModelBundle.load(adopt(serving))
    root = serving / layout.BUNDLES

    def fill(tmp: Path) -> ModelBundle:
        for path in _files_to_copy(src, None):  # no libraries: compiled afresh below
            shutil.copy2(path, tmp / path.name)
        if not (tmp / MANIFEST).is_file():
            raise ModelError(f"{src}: no {MANIFEST}")
        lib = compile_fn(tmp)  # the parity gates of `credit compile`
        _finish_bundle(tmp, lib["file"])
        shutil.rmtree(tmp / "build", ignore_errors=True)
        bundle = ModelBundle.load(tmp)
        if bundle.model_id == champion.model_id:
            raise ModelError(f"{src}: model {bundle.model_id[:12]} is already the champion")
        if bundle.feature_names != champion.feature_names:
            raise ModelError(
                f"{src}: the challenger's {bundle.n_features} features are not the champion's "
                f"{champion.n_features} (same names in the same order are required to shadow-score)"
            )
        return bundle

    final = _publish(root, ".new-", fill)
    layout.set_link(serving, "challenger", layout.relative(serving, final))
    return ModelBundle.load(final)


def _switch(serving: Path, to_role: str) -> tuple[str, str]:
    serving = Path(serving)
    if not os.path.lexists(serving / "champion"):
        raise ModelError(f"{serving}: no champion link (install a challenger with `credit compile --challenger`)")
    target = layout.role_dir(serving, to_role)
    if target is None:
        what = "challenger installed" if to_role == "challenger" else "previous champion to go back to"
        raise ModelError(f"{serving}: no {what}")
    new = ModelBundle.load(target)  # refuse a bundle that fails verification: nothing is switched
    old = ModelBundle.load(serving)
    if new.feature_names != old.feature_names:
        raise ModelError(f"{target}: its features are not the champion's; not switched")
    old_text = os.readlink(serving / "champion")
    layout.set_link(serving, "previous", old_text)
    layout.set_link(serving, "champion", layout.relative(serving, target))  # THE switch: one atomic rename
    if to_role == "challenger":
        layout.set_link(serving, "challenger", None)
    layout.link_root_names(serving)
    return old.model_id, new.model_id


def promote(serving: Path | str) -> tuple[str, str]:
    """Make the challenger the champion; returns (old champion id, new champion id)."""
    return _switch(Path(serving), "challenger")


def rollback(serving: Path | str) -> tuple[str, str]:
    """Go back to the previous champion; returns (rolled-back id, restored id)."""
    return _switch(Path(serving), "previous")


def describe(serving: Path | str) -> dict[str, str | None]:
    """role -> model id (None when absent), for `credit promote --status`."""
    out: dict[str, str | None] = {}
    for role in layout.ROLES:
        folder = layout.role_dir(serving, role)
        out[role] = None
        if folder is not None:
            with contextlib.suppress(ModelError):
                out[role] = read_manifest(folder)[0].model_id
    return out


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
