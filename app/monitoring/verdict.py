"""The drift verdict: does what moved matter to the model? One function, `judge`, on arrays.

Three signals over a window of scored requests, each against the training reference of the model
(`Reference`, read once from the model folder: reference bins, reference scores, importances, threshold):

* features, weighed by the model: each feature's PSI against its reference bins, weighted by its share of the
  model's global importance (mean |SHAP| of the training reference, manifest["global_importance"]); the
  weighted PSI is banded, and any *top* feature (the most important ones, together `TOP_IMPORTANCE` of the
  importance, at most `TOP_MAX`) with a PSI in the "act" band is "act" on its own. A feature outside the top
  above the "act" band is named, at "watch" (the model barely uses it), unless its distribution moved
  wholesale (PSI above PSI_SEVERE = 1, four times the "act" band: every income doubled, every applicant ten
  years younger): that is an input the model may not feel yet but an officer must hear of, "act".
* the score: PSI of the returned probabilities against the reference sample's scores.
* the decisions: the refusal rate of the window against the reference sample's (its scores at the model's
  threshold), with a pooled two-proportion z-test: |z| > Z_WATCH (p < 0.01) "watch", |z| > Z_ACT
  (p < 0.001) "act".

PSI bands, the ones credit-risk teams use for population stability (Siddiqi, "Credit Risk Scorecards",
Wiley 2006, ch. 8; Yurdakul, "Statistical properties of population stability index", Western Michigan
University, 2018): below 0.1 stable, 0.1 to 0.25 watch, above 0.25 act. The verdict is the worst level of
the three signals; `credit drift --fail-on-drift` exits 1 on "act".

The benchmark (benchmarks/bench_drift_detection.py) measures how often each `credit traffic --drift`
scenario gets "act" within 1,000 requests and how often undrifted traffic does (docs/monitoring.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.monitoring.drift import DriftError, fractions_matrix, psi
from app.scoring.bundle import Manifest, ModelError, as_manifest
from app.scoring.filenames import REFERENCE_SCORES

PSI_WATCH, PSI_ACT = 0.1, 0.25
PSI_SEVERE = 1.0  # a feature outside the top features: "act" only above this
Z_WATCH, Z_ACT = 2.576, 3.291  # two-sided p < 0.01, p < 0.001
TOP_IMPORTANCE, TOP_MAX = 0.8, 20
LEVELS = ("stable", "watch", "act")
SOURCES = (
    "PSI bands: Siddiqi, Credit Risk Scorecards (Wiley, 2006); "
    "Yurdakul, Statistical properties of population stability index (2018)"
)


def psi_level(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "stable" if value is None else "act"
    return "act" if value > PSI_ACT else "watch" if value > PSI_WATCH else "stable"


def _worst(*levels: str) -> str:
    return max(levels, key=LEVELS.index, default="stable")


@dataclass(frozen=True)
class Reference:
    """What a window is compared with: the training reference of one model."""

    model_id: str | None
    features: list[str]
    specs: list[dict | None]  # reference bins per feature (None: no bins)
    score_spec: dict | None
    importance: np.ndarray  # share of global importance per feature, sums to 1 (uniform when unknown)
    threshold: float | None
    refusals: int | None  # reference sample refused at the threshold
    rows: int | None  # reference sample size
    trained_at: str | None = None
    top: list[int] = field(default_factory=list)  # indices of the top features, most important first
    manifest: Manifest | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_manifest(cls, manifest: Manifest | dict, model_dir: Path | None = None) -> Reference:
        try:
            manifest = as_manifest(manifest)
        except ModelError as exc:
            raise DriftError(str(exc)) from None
        names = list(manifest.features)
        ref = manifest.reference
        bins = ref.bins if ref is not None else {}
        if not bins:
            raise DriftError("the model manifest has no reference bins (manifest.reference.bins): retrain")
        imp = np.zeros(len(names))
        pos = {n: i for i, n in enumerate(names)}
        for name, value in manifest.global_importance:
            if name in pos and math.isfinite(float(value)):
                imp[pos[name]] = max(float(value), 0.0)
        imp = imp / imp.sum() if imp.sum() > 0 else np.full(len(names), 1.0 / max(len(names), 1))
        order = sorted(range(len(names)), key=lambda j: (-imp[j], j))
        top, mass = [], 0.0
        for j in order:
            if mass >= TOP_IMPORTANCE or len(top) >= TOP_MAX or imp[j] <= 0:
                break
            top.append(j)
            mass += imp[j]
        threshold = manifest.threshold
        refusals = rows = None
        scores_file = Path(model_dir) / (ref.scores_file or REFERENCE_SCORES) if model_dir else None
        if scores_file is not None and scores_file.is_file():
            from app.scoring.bundle import refuses

            s = np.load(scores_file, allow_pickle=False).astype(np.float64)
            refusals, rows = int(np.count_nonzero(refuses(s, float(threshold)))), len(s)
        return cls(
            model_id=manifest.model_id,
            features=names,
            specs=[bins.get(n) for n in names],
            score_spec=ref.score_bins or None,
            importance=imp,
            threshold=float(threshold),
            refusals=refusals,
            rows=rows if rows is not None else ref.rows,
            trained_at=manifest.trained_at or None,
            top=top,
            manifest=manifest,
        )

    @classmethod
    def load(cls, model_dir: Path) -> Reference:
        from app.monitoring.drift import model_manifest

        return cls.from_manifest(model_manifest(model_dir), model_dir)

    def text(self) -> str:
        """'training reference: 5,000 clients (model 1a2b3c4d5e6f, trained 2026-12-07)'."""
        when = f", trained {self.trained_at[:10]}" if self.trained_at else ""
        rows = f"{self.rows:,} clients" if self.rows else "reference bins"
        mid = f"model {self.model_id[:12]}" if self.model_id else "model"
        return f"training reference: {rows} ({mid}{when})"


def refusal_test(k1: int, n1: int, k0: int, n0: int) -> tuple[float, float]:
    """(z, two-sided p) of the pooled two-proportion z-test of k1/n1 against k0/n0."""
    if n1 <= 0 or n0 <= 0:
        return 0.0, 1.0
    p1, p0, pooled = k1 / n1, k0 / n0, (k1 + k0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return (0.0, 1.0) if p1 == p0 else (math.copysign(math.inf, p1 - p0), 0.0)
    z = (p1 - p0) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def window_text(window: dict) -> str:
    """'last 1,000 requests, 10:00–10:12 UTC' (the dates too when the window spans days or is not today)."""
    rows = window.get("rows") or 0
    if window.get("last") is not None and window.get("since") is None and window.get("until") is None:
        head = f"last {rows:,} request{'s' if rows != 1 else ''}"
    else:
        head = f"{rows:,} request{'s' if rows != 1 else ''}"
        if window.get("since") or window.get("until"):
            head += f" from {window.get('since') or 'the first'} until {window.get('until') or 'now'}"
    first, last = window.get("first_ts"), window.get("last_ts")
    if not first or not last:
        return head
    a, b = datetime.fromisoformat(first).astimezone(UTC), datetime.fromisoformat(last).astimezone(UTC)
    if a.date() == b.date():
        span = f"{a:%Y-%m-%d} {a:%H:%M}–{b:%H:%M} UTC"
    else:
        span = f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M} UTC"
    return f"{head}, {span}"


def _feature_reasons(top: list[dict], weighted: float, others: list[dict]) -> list[str]:
    """Why the features' level is not stable: each top feature to act on, the weighted PSI, the others that moved."""
    reasons: list[str] = []
    for t in top:
        if t["level"] == "act":
            reasons.append(
                f"{t['feature']} (importance rank {t['rank']}, {t['importance_share']:.0%} of the model): "
                f"PSI {t['psi']:.2f} > {PSI_ACT}"
            )
    if psi_level(weighted) != "stable":
        reasons.append(f"importance-weighted feature PSI {weighted:.3f} ({psi_level(weighted)})")
    severe = [o for o in others if o["level"] == "act"]
    if severe:
        names = ", ".join(f"{o['feature']} {o['psi']:.2f}" for o in severe[:5])
        reasons.append(f"{len(severe)} feature(s) outside the top moved wholesale (PSI > {PSI_SEVERE:g}): {names}")
    if len(others) > len(severe):
        names = ", ".join(f"{o['feature']} {o['psi']:.2f}" for o in others if o["level"] == "watch")
        reasons.append(f"{len(others) - len(severe)} minor feature(s) above PSI {PSI_ACT} (watch): {names}")
    return reasons


def judge(X: np.ndarray, scores: np.ndarray, refused: np.ndarray | None, ref: Reference) -> dict:
    """The verdict over one window: X float32[n, p] in the reference's feature order, the scores returned and
    whether each request was refused (None: decided from the scores at the reference's threshold)."""
    n = len(X)
    if X.ndim != 2 or X.shape[1] != len(ref.features):
        raise DriftError(f"the window has {X.shape[-1]} features, the model {len(ref.features)}")
    cols = [j for j, s in enumerate(ref.specs) if s]
    values = np.zeros(len(ref.features))
    if cols and n:
        actual = fractions_matrix(X if len(cols) == len(ref.features) else X[:, cols], [ref.specs[j] for j in cols])
        for j, fr in zip(cols, actual, strict=True):
            values[j] = psi(ref.specs[j]["fractions"], fr)
    weighted = float(np.dot(ref.importance, values))
    top = [
        {
            "feature": ref.features[j],
            "rank": r + 1,
            "importance_share": float(ref.importance[j]),
            "psi": float(values[j]),
            "level": psi_level(float(values[j])),
        }
        for r, j in enumerate(ref.top)
    ]
    top_set = set(ref.top)
    others = sorted(
        (
            {"feature": ref.features[j], "importance_share": float(ref.importance[j]), "psi": float(values[j])}
            for j in cols
            if j not in top_set and values[j] > PSI_ACT
        ),
        key=lambda f: -f["psi"],
    )
    for o in others:
        o["level"] = "act" if o["psi"] > PSI_SEVERE else "watch"
    feature_level = _worst(psi_level(weighted), *(t["level"] for t in top), *(o["level"] for o in others))
    reasons = _feature_reasons(top, weighted, others)

    score_psi = psi(ref.score_spec["fractions"], _score_fractions(scores, ref.score_spec)) if ref.score_spec else None
    score_level = psi_level(score_psi)
    if score_level != "stable":
        reasons.append(f"score PSI {score_psi:.3f} ({score_level})")

    decisions = None
    decision_level = "stable"
    if ref.refusals is not None and ref.rows and n:
        if refused is None and ref.threshold is not None:
            from app.scoring.bundle import refuses

            refused = refuses(np.asarray(scores, dtype=np.float64), ref.threshold)
        if refused is not None:
            k = int(np.count_nonzero(refused))
            z, p = refusal_test(k, n, ref.refusals, ref.rows)
            decision_level = "act" if abs(z) > Z_ACT else "watch" if abs(z) > Z_WATCH else "stable"
            decisions = {
                "window_refusal_rate": k / n,
                "window_requests": n,
                "reference_refusal_rate": ref.refusals / ref.rows,
                "reference_rows": ref.rows,
                "z": z if math.isfinite(z) else math.copysign(1e9, z),
                "p_value": p,
                "level": decision_level,
            }
            if decision_level != "stable":
                reasons.append(
                    f"refusal rate {k / n:.1%} against {ref.refusals / ref.rows:.1%} at training "
                    f"(z = {z:.1f}, p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}; {decision_level})"
                )
    level = _worst(feature_level, score_level, decision_level)
    return {
        "level": level,
        "reasons": reasons,
        "features": {"weighted_psi": weighted, "level": feature_level, "top": top, "minor_drifted": others},
        "score": {"psi": score_psi, "level": score_level},
        "decisions": decisions,
        "bands": {
            "psi_watch": PSI_WATCH,
            "psi_act": PSI_ACT,
            "psi_severe": PSI_SEVERE,
            "z_watch": Z_WATCH,
            "z_act": Z_ACT,
        },
        "sources": SOURCES,
    }


def _score_fractions(scores: np.ndarray, spec: dict) -> np.ndarray:
    from app.monitoring.drift import bin_fractions

    fr = spec["fractions"]
    return bin_fractions(np.asarray(scores, dtype=np.float64), np.asarray(spec["edges"], dtype=np.float64), len(fr))
