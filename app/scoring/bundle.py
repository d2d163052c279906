"""The model bundle: the one owner of the model folder, verified once, handed to every part.

A model folder holds model.txt (LightGBM text), manifest.json (features, threshold, calibration, costs, metrics,
drift reference...) and the compiled library model-<id12>.so (`credit compile`).

The model id names everything that decides (`decision_id`): the sha256 of the canonical JSON of model.txt's
sha256 (`model_text_sha256` in the manifest), the feature list, the threshold, the calibration map and the costs.
Two models that can decide differently never share an id. Manifests written before this rule have no
`model_text_sha256`; their id is model.txt's sha256 and they stay loadable (and their log rows readable).
`ModelBundle.load(model_dir)` checks, before anything is served:

- the manifest parses into the typed `Manifest`, and its model id is `decision_id` of its own fields;
- model.txt's sha256 equals the manifest's record (when the folder has model.txt);
- the library's sha256 equals the manifest's record, checked on a private in-memory copy that is then loaded
  (app.scoring.library.private_copy): the process never maps a file someone else can truncate or rewrite;
- the library reports the same model id and feature count;
- the library embeds the digest of the manifest it was compiled with (`manifest_digest`: every key
  but "library"), so an edited threshold, calibration or feature list is refused, not believed;
- the threshold compiled into the library equals the manifest's.

Any mismatch raises ModelError naming what differs. A serving folder with versioned bundles and
champion / challenger / previous links (app/scoring/layout.py) is read through its `champion` link;
`ModelBundle.load_pair(model_dir)` gives the champion and, when installed, the challenger (`Bundles`), each
verified the same way, plus the challenger's features checked equal to the champion's (shadow scoring scores the
same feature vector with both). The decision rule lives here (`refuses`) and in
app/scoring/native/score_ext.c (`credit_refuses`); a test proves they agree on every edge.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np

from app.scoring import layout
from app.scoring.filenames import MANIFEST, MODEL_TEXT
from app.scoring.library import CompiledModel, ModelError, bind_library, private_copy
from app.scoring.sections import (
    UNSET,
    Calibration,
    Distributed,
    Evaluation,
    Figures,
    Metrics,
    Search,
    Sensitive,
    ShapParity,
    UnsetType,
)

__all__ = [
    "MANIFEST",
    "MODEL_TEXT",
    "Bundles",
    "Champion",
    "DataMismatchError",
    "Manifest",
    "ModelBundle",
    "as_manifest",
    "ModelError",
    "decide",
    "decision_id",
    "document_manifest",
    "identify",
    "manifest_dict",
    "manifest_digest",
    "refuses",
]


class DataMismatchError(ModelError):
    """The database's feature definitions are not the ones the model was trained on."""


# ---------------------------------------------------------------- the decision rule


def refuses(p: Any, threshold: float) -> Any:
    """The decision rule: refuse when the probability of default is at or above the threshold.

    Works on a float or a numpy array (then returns a bool array)."""
    return np.greater_equal(p, threshold) if isinstance(p, np.ndarray) else p >= threshold


def decide(p: float, threshold: float) -> str:
    return "refuse" if refuses(p, threshold) else "accept"


# ---------------------------------------------------------------- the manifest


class Library(msgspec.Struct, kw_only=True):
    file: str
    sha256: str
    compiler: str = ""
    flags: str = ""
    parity_max_abs_diff: float | None = None
    parity_rows: int | None = None
    compiled_at: str = ""
    compile_seconds: float | None = None
    native_sources: list[str] = []
    # recorded by `credit compile` since the batch path was chosen by timing, and the SHAP parity gate
    batch_path: str | UnsetType = UNSET
    batch_path_us_per_row: dict[str, float] | UnsetType = UNSET
    shap: ShapParity | UnsetType = UNSET


class Reference(msgspec.Struct, kw_only=True):
    file: str
    rows: int
    scores_file: str = ""
    bins: dict[str, dict[str, list[float]]] = {}
    score_bins: dict[str, list[float]] = {}


class Champion(msgspec.Struct, kw_only=True):
    """Which candidate `credit train` shipped, why, and whether it was forced past the trivial policy."""

    kind: str
    why: str = ""
    forced: bool = False


class Manifest(msgspec.Struct, kw_only=True):
    """The typed view of manifest.json (unknown keys are kept in the raw dict, not rejected).

    `credit train` builds one (app/model/train.py) and writes it with `manifest_dict`; its sections are typed in
    app/scoring/sections.py (every field optional: older manifests load)."""

    model_id: str
    model_text_sha256: str | None = None  # absent in manifests written before the id named the whole decision
    features: list[str]
    threshold: float
    n_features: int | None = None
    app_version: str = ""
    costs: dict[str, float] = {}
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    baselines: dict[str, Figures] = {}
    trained_at: str = ""
    data_period: str | None = None  # written by no `credit train` yet; the card shows it when a manifest has it
    data_fingerprint: str | None = None
    data_source: str | None = None
    schema_fingerprint: str | None = None
    versions: dict[str, str] = {}
    params: dict[str, Any] = {}  # LightGBM's (or the scorecard's) own parameters, an open set
    reference: Reference | None = None
    calibration: Calibration | None = None
    sensitive: Sensitive | None = None
    global_importance: list[tuple[str, float]] = []
    champion: Champion | None = None
    candidates: dict[str, Figures] = {}
    evaluation: Evaluation = msgspec.field(default_factory=Evaluation)
    search: Search = msgspec.field(default_factory=Search)
    distributed: Distributed | None = None  # a fit on a cluster (app/model/distributed.py)
    library: Library | None = None  # added by `credit compile`


# sections a manifest has only once something sets them: absent from the file rather than null
_ABSENT_WHEN_UNSET = ("model_text_sha256", "data_period", "champion", "distributed", "library")


def manifest_dict(manifest: Manifest) -> dict[str, Any]:
    """The JSON object of a typed manifest, as manifest.json holds it (what `identify` and the digest read)."""
    # through JSON text: tuples become lists, and a non-finite figure is refused here as the file would refuse it
    out = json.loads(json.dumps(msgspec.to_builtins(manifest), allow_nan=False))
    for key in _ABSENT_WHEN_UNSET:
        if out.get(key) is None:
            out.pop(key, None)
    return out


def as_manifest(manifest: Manifest | dict[str, Any]) -> Manifest:
    """The typed view of a manifest already read (a typed one as is); ModelError when it does not parse."""
    if isinstance(manifest, Manifest):
        return manifest
    try:
        return msgspec.convert(manifest, Manifest)
    except msgspec.ValidationError as exc:
        raise ModelError(f"invalid manifest: {exc}") from None


def document_manifest(manifest: Manifest | dict[str, Any]) -> Manifest:
    """The typed view for documents that describe a model (the card, the report, the dashboard's model page):
    like `as_manifest`, but a manifest too sparse to load still gets one, its missing model id empty, its
    feature list empty and its threshold NaN (each document says "not recorded" for them)."""
    if isinstance(manifest, Manifest):
        return manifest
    return as_manifest({"model_id": "", "features": [], "threshold": math.nan, **manifest})


def calibration_map(calibration: Calibration | None) -> tuple[float, float]:
    """(a, b) of the Platt map p = sigmoid(a * margin + b) a manifest records; identity when it has none."""
    cal = calibration or Calibration()
    return float(1.0 if cal.a is None else cal.a), float(0.0 if cal.b is None else cal.b)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest as trained: canonical JSON of every key except "library" (which compile adds)."""
    body = {k: v for k, v in manifest.items() if k != "library"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def decision_id(manifest: dict[str, Any], model_text_sha256: str) -> str:
    """The model id: sha256 of the canonical JSON of everything that decides (trees, features, threshold,
    calibration map) and the costs the threshold was chosen for."""
    body = {
        "model_text_sha256": model_text_sha256,
        "features": list(manifest.get("features") or []),
        "threshold": float(manifest["threshold"]),
        "calibration": _calibration_body(manifest.get("calibration")),
        "costs": {str(k): float(v) for k, v in sorted((manifest.get("costs") or {}).items())},
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _calibration_body(calibration: dict[str, Any] | None) -> dict[str, Any]:
    """The map as the id names it, read from the JSON the id is computed over (as `calibration_map` reads it)."""
    cal = calibration or {}
    return {"a": float(cal.get("a", 1.0)), "b": float(cal.get("b", 0.0))}


def identify(manifest: dict[str, Any], model_text: bytes) -> str:
    """Set manifest["model_text_sha256"] and manifest["model_id"] (the decision id) for `model_text`; returns
    the id. Every writer of a manifest calls this last, after the threshold, calibration and costs are set."""
    manifest["model_text_sha256"] = hashlib.sha256(model_text).hexdigest()
    manifest["model_id"] = decision_id(manifest, manifest["model_text_sha256"])
    return manifest["model_id"]


def text_sha256(manifest: Manifest) -> str:
    """The sha256 model.txt must have: the manifest's record, or (older manifests) the model id itself."""
    return manifest.model_text_sha256 or manifest.model_id


def read_manifest(model_dir: Path) -> tuple[Manifest, dict[str, Any]]:
    path = model_dir / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: no manifest; run `credit train` then `credit compile`") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable manifest: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: the manifest is not a JSON object")
    try:
        manifest = msgspec.convert(raw, Manifest)
    except msgspec.ValidationError as exc:
        raise ModelError(f"{path}: invalid manifest: {exc}") from None
    if manifest.n_features is not None and manifest.n_features != len(manifest.features):
        raise ModelError(f"{path}: n_features {manifest.n_features} but {len(manifest.features)} features listed")
    if manifest.model_text_sha256 is not None:
        try:
            want = decision_id(raw, manifest.model_text_sha256)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{path}: invalid manifest: {exc}") from None
        if want != manifest.model_id:
            raise ModelError(
                f"{path}: model id {manifest.model_id[:12]} does not name this manifest's trees, features, "
                f"threshold, calibration and costs (they give {want[:12]}); it was edited after `credit train`"
            )
    return manifest, raw


# ---------------------------------------------------------------- the bundle


class ModelBundle:
    """A verified model folder: typed manifest, loaded library, paths, the decision rule."""

    def __init__(self, model_dir: Path, manifest: Manifest, raw: dict[str, Any], model: CompiledModel) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.raw_manifest = raw
        self.model = model
        self.model_id = manifest.model_id
        self.threshold = float(manifest.threshold)
        self.feature_names = list(manifest.features)
        self.n_features = len(self.feature_names)
        self.digest = manifest_digest(raw)
        self.calibration = calibration_map(manifest.calibration)

    # paths: the only place that knows the folder's layout
    @property
    def manifest_path(self) -> Path:
        return self.model_dir / MANIFEST

    @property
    def model_text_path(self) -> Path:
        return self.model_dir / MODEL_TEXT

    @property
    def library_path(self) -> Path:
        return self.model.so_path

    def library_image(self) -> bytes:
        """The library's verified bytes, as loaded (not re-read from disk)."""
        image = self.model.image
        return image.read() if image is not None else self.library_path.read_bytes()

    @property
    def reference_path(self) -> Path | None:
        ref = self.manifest.reference
        return self.model_dir / ref.file if ref is not None and ref.file else None

    @property
    def reference_scores_path(self) -> Path | None:
        ref = self.manifest.reference
        return self.model_dir / ref.scores_file if ref is not None and ref.scores_file else None

    def reference_rows(self) -> np.ndarray | None:
        path = self.reference_path
        return np.load(path, allow_pickle=False) if path is not None and path.is_file() else None

    def reference_scores(self) -> np.ndarray | None:
        path = self.reference_scores_path
        return np.load(path, allow_pickle=False) if path is not None and path.is_file() else None

    def model_text(self) -> str:
        """model.txt, re-checked against the manifest (explanations must use the model that scores)."""
        data = read_model_text(self.model_dir, text_sha256(self.manifest))
        if data is None:
            raise ModelError(f"{self.model_text_path}: missing (needed for explanations)")
        return data.decode("utf-8")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of default for float32 rows (the compiled library)."""
        return self.model.predict(X)

    def predict_row(self, x: np.ndarray) -> float:
        return self.model.predict_row(x)

    def decide(self, p: float) -> str:
        return decide(p, self.threshold)

    def refuses(self, p: Any) -> Any:
        return refuses(p, self.threshold)

    def check_data(
        self, meta: dict[str, str], names: list[str], *, db_label: str, allow_other: bool = False
    ) -> str | None:
        """Compare the database's feature schema with the model's.

        Returns None when they agree, a warning when they differ but `allow_other` (the caller logs
        it); raises DataMismatchError otherwise. `meta` is the database's meta table, `names` its
        feature_names in order."""
        problem = None
        if names != self.feature_names:
            extra = sorted(set(names) - set(self.feature_names))[:5]
            missing = sorted(set(self.feature_names) - set(names))[:5]
            how = (
                "same names, different order"
                if not extra and not missing
                else f"not in model: {extra}; missing: {missing}"
            )
            problem = f"its feature names differ from the model's ({len(names)} vs {self.n_features} features; {how})"
        else:
            want, have = self.manifest.schema_fingerprint, meta.get("schema_fingerprint")
            if want and have and want != have:
                problem = f"its feature definitions differ (schema {have[:12]}, model's {want[:12]})"
        if problem is None:
            return None
        trained = self.manifest.data_source or "unknown data"
        schema = str(self.manifest.schema_fingerprint)[:12]
        msg = (
            f"model {self.model_id[:12]} was trained on {trained} (schema {schema}); "
            f"database {db_label} holds {meta.get('source', 'unknown data')}: {problem}. "
            "Re-train on this database (`credit train`), or pass --allow-other-data to score it anyway"
        )
        if allow_other:
            return msg
        raise DataMismatchError(msg)

    @classmethod
    def load_pair(cls, model_dir: Path | str) -> Bundles:
        """The champion (ModelError if it fails) and the challenger of a serving folder. A challenger that fails
        verification is not loaded: `Bundles.challenger_error` says why and the champion is served alone."""
        champion = cls.load(model_dir)
        try:
            folder = layout.role_dir(model_dir, "challenger")
            if folder is None:
                return Bundles(champion)
            challenger = cls.load(folder)
            if challenger.feature_names != champion.feature_names:
                raise ModelError(
                    f"{folder}: the challenger's {challenger.n_features} features are not the champion's "
                    f"{champion.n_features} (same names in the same order are required to shadow-score)"
                )
        except ModelError as exc:
            return Bundles(champion, None, f"challenger not loaded: {exc}")
        if challenger.model_id == champion.model_id:
            return Bundles(champion)
        return Bundles(champion, challenger)

    @classmethod
    def load(cls, model_dir: Path | str, *, require_text: bool = False) -> ModelBundle:
        """Verify and load a model folder (a serving folder's `champion` bundle when it has one); model.txt, when
        present, must match the model id (and must be present with require_text)."""
        model_dir = layout.role_dir(model_dir, "champion") or Path(model_dir)
        manifest, raw = read_manifest(model_dir)
        path = model_dir / MANIFEST
        if read_model_text(model_dir, text_sha256(manifest)) is None and require_text:
            raise ModelError(f"{model_dir / MODEL_TEXT}: missing; run `credit train --model {model_dir}`")
        lib_info = manifest.library
        if lib_info is None:
            raise ModelError(f"{path}: the model is not compiled; run `credit compile --model {model_dir}`")
        name = lib_info.file
        if "/" in name or name.startswith("."):
            raise ModelError(f"{path}: library file name {name!r} is not a plain file name")
        so_path = model_dir / name
        if not so_path.is_file():
            raise ModelError(f"{so_path}: compiled library is missing; run `credit compile --model {model_dir}`")
        try:
            image = private_copy(so_path)  # read once, hashed, loaded from memory: never the file on disk
        except OSError as exc:
            raise ModelError(f"{so_path}: cannot read the compiled library: {exc}") from None
        if image.sha256 != lib_info.sha256:
            image.close()
            raise ModelError(
                f"{so_path}: refusing to load: manifest expected sha256 {lib_info.sha256}, found {image.sha256} "
                f"(the library was modified or replaced; run `credit compile --model {model_dir}`)"
            )
        try:
            lib = bind_library(image.path)
        except (OSError, AttributeError) as exc:
            image.close()
            raise ModelError(f"{so_path}: cannot load compiled library: {exc}") from None
        lib_id = lib.credit_model_id().decode("ascii", "replace")
        if lib_id != manifest.model_id:
            raise ModelError(f"{so_path}: library is for model {lib_id}, manifest says {manifest.model_id}")
        n = lib.credit_num_features()
        if n != len(manifest.features):
            raise ModelError(f"{so_path}: library expects {n} features, manifest lists {len(manifest.features)}")
        lib_threshold = float(lib.credit_threshold())
        if lib_threshold != float(manifest.threshold):
            raise ModelError(
                f"{path}: threshold {manifest.threshold!r} differs from the one compiled into {so_path.name} "
                f"({lib_threshold!r}); the manifest was edited after `credit compile`"
            )
        lib_digest = lib.credit_manifest_sha256().decode("ascii", "replace")
        if lib_digest != manifest_digest(raw):
            raise ModelError(
                f"{path}: the manifest differs from the one {so_path.name} was compiled with "
                f"(digest {manifest_digest(raw)[:12]}, library {lib_digest[:12]}); it was edited after "
                f"`credit compile`: re-run `credit compile --model {model_dir}`"
            )
        model = CompiledModel(lib, manifest.model_id, list(manifest.features), so_path, image)
        return cls(model_dir, manifest, raw, model)


def load_model(model_dir: Path | str) -> CompiledModel:
    """The library of a verified model folder (shorthand for ModelBundle.load(model_dir).model)."""
    return ModelBundle.load(model_dir).model


class Bundles(NamedTuple):
    """What a server scores with: the champion decides; the challenger, when installed, is scored in shadow."""

    champion: ModelBundle
    challenger: ModelBundle | None = None
    challenger_error: str | None = None


def read_model_text(model_dir: Path, model_id: str) -> bytes | None:
    """model.txt's bytes if present; ModelError when its sha256 is not `model_id` (the manifest's
    `text_sha256`: model_text_sha256, or the model id of an older manifest)."""
    path = model_dir / MODEL_TEXT
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    found = hashlib.sha256(data).hexdigest()
    if found != model_id:
        raise ModelError(
            f"{path}: sha256 {found[:12]} is not the model id's record {model_id[:12]} (model.txt was changed or comes "
            "from another model; re-run `credit train`)"
        )
    return data
