"""Explanations of one client's score: exact TreeSHAP contributions and refusal reasons in words.

The contributions come from the compiled model library (`credit_shap_row`, emitted by
app/model/codegen_shap.py): LightGBM's path-dependent TreeSHAP, the arithmetic of
`Booster.predict(pred_contrib=True)`, checked against it to 1e-9 by `credit compile` before the
library is installed (tests/test_shap.py checks it again on random rows). So explaining imports
neither LightGBM nor scikit-learn, scipy or pandas: only numpy, ctypes and the hash-checked library.
Contributions are in the model's raw margin (log-odds) space:
    base_value + sum(shap) == margin.
The probability is the library's own (`credit_predict_row`, the same number as `score()`), so a
calibration map compiled into the library applies to it; without one it is sigmoid(margin).

A *reason* is a feature that pushes the client towards refusal (positive SHAP), told as a sentence
that compares the client's value with a typical accepted client: the median of that feature over
the reference rows (manifest reference sample) whose reference score is below the threshold.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from app.errors import CreditError
from app.model.labels import label, label_for, reason_sentence
from app.scoring.bundle import ModelBundle
from app.scoring.library import ModelError, shap_with
from app.vectors import read_vector


class ExplainError(CreditError, ValueError):
    pass


_CACHE: dict[tuple[str, str, str], Explainer] = {}
_LOCK = threading.Lock()


def _none_if_nan(v: float) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


class Explainer:
    """Holds the compiled model and the typical accepted values; one per model (see `load`)."""

    def __init__(
        self, bundle: ModelBundle, reference: np.ndarray | None = None, accepted: np.ndarray | None = None
    ) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.model_id = bundle.model_id
        self.feature_names: list[str] = bundle.feature_names
        self.n_features = bundle.n_features
        self._index = {n: i for i, n in enumerate(self.feature_names)}
        # reference sample (float32[n, p]) and its accepted rows; per-feature facts computed on first use,
        # so that the first explanation only pays for the features it names (idempotent, thread-safe enough)
        self._reference = reference
        self._accepted = accepted if accepted is not None and len(accepted) else reference
        self._typical = np.full(self.n_features, np.nan)
        self._units: list[str | None] = [None] * self.n_features
        self.cal_a, self.cal_b = bundle.calibration  # the manifest's Platt map, for raw-margin contributions

    def _feature(self, i: int) -> None:
        if self._units[i] is not None:
            return
        unit = label_for(self.feature_names[i]).unit
        if self._reference is not None:
            col = self._reference[:, i]
            finite = np.where(np.isnan(col), 0, col)
            if np.all((finite == 0) | (finite == 1)) and np.any(finite == 1):
                unit = "flag"
            self._typical[i] = column_nanmedian(self._accepted[:, i : i + 1])[0]
        self._units[i] = unit

    def typical_of(self, i: int) -> float:
        """Median of feature i over the accepted reference rows (NaN when unknown)."""
        self._feature(i)
        return float(self._typical[i])

    def unit_of(self, i: int) -> str:
        """The unit of feature i for sentences ("flag" for a 0/1 column of the reference sample)."""
        self._feature(i)
        return self._units[i]  # type: ignore[return-value]

    @property
    def typical(self) -> np.ndarray:
        """float64[p]: typical accepted value of every feature, NaN when unknown."""
        for i in range(self.n_features):
            self._feature(i)
        return self._typical

    @property
    def units(self) -> list[str]:
        for i in range(self.n_features):
            self._feature(i)
        return list(self._units)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model_dir: str | Path) -> Explainer:
        """The explainer of the verified model in `model_dir` (app.scoring.bundle.ModelBundle.load)."""
        try:
            bundle = ModelBundle.load(model_dir)
        except ModelError as exc:
            raise ExplainError(str(exc)) from None
        return cls.from_bundle(bundle)

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> Explainer:
        """Load (or reuse) the explainer of a verified bundle; cached per (model id, manifest digest, library)."""
        key = (bundle.model_id, bundle.digest, bundle.manifest.library.sha256)
        with _LOCK:
            hit = _CACHE.get(key)
        if hit is not None:
            return hit
        model = bundle.model
        if not hasattr(model._lib, "credit_shap_batch"):
            raise ExplainError(
                f"{bundle.library_path}: this library has no TreeSHAP (compiled before explanations were compiled"
                f" in); run `credit compile --model {bundle.model_dir}`"
            )
        reference = bundle.reference_rows()
        if reference is not None and (reference.ndim != 2 or reference.shape[1] != bundle.n_features):
            reference = None
        accepted = None
        scores = bundle.reference_scores()
        if reference is not None and scores is not None and scores.shape == (len(reference),):
            accepted = reference[~bundle.refuses(scores)]
        explainer = cls(bundle, reference, accepted)
        with _LOCK:
            return _CACHE.setdefault(key, explainer)

    def warm(self) -> None:
        """Do once now what the first explanation would: label every feature (both languages) and explain one
        row, so the first request after a start does not pay for it."""
        for name in self.feature_names:
            label_for(name)
        self.explain(np.full(len(self.feature_names), np.nan, dtype=np.float32))

    # ------------------------------------------------------------------ inputs
    def vector(self, mapping: dict[str, float | None]) -> np.ndarray:
        """float32 vector in model order from {name: value|None}; absent names are NaN."""
        unknown = [k for k in mapping if k not in self._index]
        if unknown:
            raise ExplainError(f"unknown feature(s): {', '.join(sorted(unknown)[:10])}")
        x = np.full(self.n_features, np.nan, dtype=np.float32)
        for k, v in mapping.items():
            if v is not None:
                x[self._index[k]] = v
        return x

    def _as_row(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1 or x.shape[0] != self.n_features:
            raise ExplainError(f"expected a vector of {self.n_features} features, got shape {x.shape}")
        return x

    # ------------------------------------------------------------------ SHAP
    def _rows(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ExplainError(f"expected rows of {self.n_features} features, got shape {X.shape}")
        return np.ascontiguousarray(X)

    def raw_shap_values(self, X) -> np.ndarray:
        """TreeSHAP from the compiled library: float64[n, p+1], last column = base value (raw margin space),
        equal to LightGBM's pred_contrib (float32 rows, as the model reads them)."""
        return shap_with(self.model._lib, self._rows(X))

    def shap_values(self, X) -> np.ndarray:
        """Contributions in the calibrated log-odds the probability comes from: with the manifest's Platt map
        (a, b) every contribution is scaled by a and the base value is a * base + b (without one, the raw
        TreeSHAP), so base + sum(contributions) = logit(probability)."""
        out = self.raw_shap_values(X)
        if (self.cal_a, self.cal_b) != (1.0, 0.0):
            out[:, :-1] *= self.cal_a
            out[:, -1] = self.cal_a * out[:, -1] + self.cal_b
        return out

    def margin(self, X) -> np.ndarray:
        """Calibrated log-odds: base value + sum of the contributions."""
        return self.shap_values(X).sum(axis=1)

    # ------------------------------------------------------------------ explanation
    def explain(self, x, top: int = 4, lang: str = "fr") -> dict:
        """Contributions of every feature (sorted by |shap|) and up to `top` refusal reasons."""
        if lang not in ("fr", "en"):
            raise ExplainError(f"lang must be fr or en, not {lang!r}")
        x = self._as_row(x)
        contrib = self.shap_values(x)[0]
        shap, base = contrib[:-1], float(contrib[-1])
        margin = base + float(shap.sum())
        order = np.argsort(-np.abs(shap), kind="stable")
        names = self.feature_names
        contributions = [
            {
                "feature": names[i],
                "label": label(names[i], lang),
                "value": _none_if_nan(x[i]),
                "shap": float(shap[i]),
            }
            for i in order
        ]
        reasons = []
        for i in order:
            if len(reasons) >= max(top, 0):
                break
            if shap[i] <= 0:
                continue
            typ = _none_if_nan(self.typical_of(i))
            reasons.append(
                {
                    "feature": names[i],
                    "sentence": reason_sentence(names[i], _none_if_nan(x[i]), typ, lang, unit=self.unit_of(i)),
                    "shap": float(shap[i]),
                    "typical": typ,
                }
            )
        probability = float(self.model.predict_row(x))  # the library's link: score() says the same
        return {
            "model_id": self.model_id,
            "base_value": base,
            "margin": margin,
            "probability": probability,
            "threshold": self.bundle.threshold,
            "decision": self.bundle.decide(probability),
            "contributions": contributions,
            "reasons": reasons,
        }

    def explain_mapping(self, features: dict[str, float | None], top: int = 4, lang: str = "fr") -> dict:
        """Explain an applicant given as {name: value|None} (POST /explain)."""
        return self.explain(self.vector(features), top=top, lang=lang)


def column_nanmedian(X: np.ndarray) -> np.ndarray:
    """np.nanmedian(X, axis=0) in float64 (NaN for an all-NaN column), vectorised: one sort of the
    transposed matrix (NaN sorts last) instead of nanmedian's per-column loop (~100x faster here)."""
    S = np.sort(np.ascontiguousarray(X.T, dtype=np.float64), axis=1)
    n = (~np.isnan(S)).sum(axis=1)
    out = np.full(S.shape[0], np.nan)
    has = n > 0
    rows = np.nonzero(has)[0]
    lo, hi = S[rows, (n[has] - 1) // 2], S[rows, n[has] // 2]
    with np.errstate(all="ignore"):
        out[has] = np.where(lo == hi, lo, (lo + hi) / 2.0)
    return out


def client_vector(conn, client_id: int, n_features: int | None = None) -> np.ndarray | None:
    """The client's feature vector from the `features` table, or None for an unknown client."""
    x = read_vector(conn, client_id)
    if x is None:
        return None
    x = x.astype(np.float32)
    if n_features is not None and x.shape[0] != n_features:
        raise ExplainError(
            f"features.x of client {client_id} has {x.shape[0]} values, the model expects {n_features}"
            " (database and model do not match: re-run `credit train`)"
        )
    return x


def explain_client(conn, explainer: Explainer, client_id: int, top: int = 4, lang: str = "fr") -> dict | None:
    """Explanation of a known client (None when unknown), with its client_id."""
    x = client_vector(conn, client_id, explainer.n_features)
    if x is None:
        return None
    out = explainer.explain(x, top=top, lang=lang)
    return {"client_id": int(client_id), **out}


def _check_feature_names(conn, explainer: Explainer) -> None:
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    except Exception:  # table missing: nothing to compare
        return
    if names and names != explainer.feature_names:
        raise ExplainError(
            "the database's feature_names differ from the model manifest's features: re-run `credit train`"
        )
