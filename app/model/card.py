"""Model card (markdown) and training-time fairness, written beside the manifest at training.

- `training_fairness(...)`: fairness (app.monitoring.fairness) of the honest out-of-fold decisions
  (refuse when the out-of-fold probability >= the manifest threshold), written to `fairness.json`.
- `render(manifest, fairness)`: the card as markdown; `write(model_dir, ...)`: `model_card.md`.
  The card names the model id; every section reads the manifest with defaults, so a manifest written by a
  newer or older `credit train` still gets a card (a missing figure says "not recorded").

The API serves both files (GET /model/card, GET /model/fairness); no figure is computed twice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from app.files import atomic_write_bytes, atomic_write_json
from app.scoring.bundle import Manifest, document_manifest
from app.scoring.sections import Sensitive

CARD_FILE = "model_card.md"
FAIRNESS_FILE = "fairness.json"
NOT_RECORDED = "not recorded"

INTENDED_USE = (
    "Estimate the probability that a consumer-credit applicant of *Prêt à dépenser* defaults, and propose "
    "accept or refuse against a threshold set by business cost. Users: loan officers (one client at a time, "
    "with the explanation), risk analysts (portfolio scoring, monitoring). The decision support is advisory: "
    "an officer takes the decision and can be asked to justify it to the client."
)
OUT_OF_SCOPE = (
    "Not for other products (mortgages, business loans), other countries' populations, or fully automated "
    "refusals without human review. Credit scoring is a high-risk use (EU AI Act, Annex III): logging, "
    "accuracy monitoring and bias examination are part of its use (`credit performance`, "
    "GET /monitoring/fairness)."
)
LIMITATIONS = (
    "- Trained on the labelled clients of one data extract; performance on later applicants is measured "
    "only once outcomes are observed (`credit outcomes import`, `credit performance`).\n"
    "- Outcomes exist only for accepted clients in real life (reject inference is not done): realised "
    "figures describe the accepted population.\n"
    "- Out-of-fold figures are honest estimates on the training population, not guarantees.\n"
    "- Fairness figures describe differences between groups; they do not by themselves say whether a "
    "difference is justified. Groups smaller than the minimum size are not compared.\n"
    "- With synthetic data (`credit generate`) every figure describes the generator, not real clients."
)


def sensitive_features(features: list[str], attributes: tuple[str, ...]) -> dict[str, list[str]]:
    """{attribute: [model features derived from it]} (app.monitoring.fairness.derived_features)."""
    from app.scoring.fairness import derived_features

    return derived_features(features, attributes)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NOT_RECORDED
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _or(v: Any, missing: str = NOT_RECORDED) -> Any:
    """The value, or `missing` when the manifest does not record it."""
    return missing if v is None else v


def _pct(v: Any) -> str:
    return NOT_RECORDED if v is None else f"{100 * float(v):.1f} %"


def training_fairness(
    sensitive: dict[str, np.ndarray],
    y: np.ndarray,
    oof: np.ndarray,
    threshold: float,
    **kw: Any,
) -> dict:
    """Fairness of the out-of-fold decisions (refuse when oof >= threshold) against the true labels."""
    from app.scoring.bundle import refuses
    from app.scoring.fairness import fairness

    refused = refuses(np.asarray(oof, dtype=np.float64), threshold)
    rep = fairness(sensitive, refused, np.asarray(y, dtype=np.float64), **kw)
    return rep | {"source": "out-of-fold predictions at training (honest: no client scored by a model fitted on it)"}


def sensitive_for_training(conn: Any, ids: np.ndarray, attributes: str | None = None) -> dict[str, np.ndarray] | None:
    """Sensitive attributes (`attributes`: the caller's setting CREDIT_SENSITIVE; its default when None) of the
    training clients, from the data's `clients` table; attributes the table lacks (e.g. a data set imported with
    ingest-csv) are left out; None when none is available."""
    from app.config import Settings
    from app.scoring.fairness import parse_attributes, sensitive_values

    wanted = parse_attributes(Settings().sensitive if attributes is None else attributes)
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(clients)")}
        usable = tuple(a for a in wanted if ("age_years" if a == "age_band" else a) in cols)
        return sensitive_values(conn, ids, usable) if usable else None
    except Exception:  # noqa: BLE001 - the card says "not recorded"; training must not fail for its report
        return None


def write_at_training(
    model_dir: Path,
    manifest: Manifest | dict,
    *,
    y: np.ndarray,
    oof: np.ndarray,
    sensitive: dict[str, np.ndarray] | None,
) -> Path:
    """Called by app.model.train at the end of training: fairness.json (when attributes are known), then
    model_card.md."""
    fair = None
    if sensitive:
        fair = training_fairness(sensitive, y, oof, document_manifest(manifest).threshold)
    return write(model_dir, manifest, fair, tuple(sensitive or ()))


def _fairness_section(fair: dict | None) -> list[str]:
    if not fair:
        return [f"Training-time fairness: {NOT_RECORDED} (no sensitive attributes available)."]
    lines = [
        f"On {fair.get('clients', '?')} clients, {fair.get('source', '')}. Approval-rate ratio to the "
        f"best-treated group; flagged below {fair.get('ratio_floor', 0.8)} (four-fifths rule); groups under "
        f"{fair.get('min_group', '?')} clients are not compared.",
        "",
    ]
    for attr, table in (fair.get("attributes") or {}).items():
        lines += [
            f"**{attr}** (best-treated: {table.get('best_group') or '—'})",
            "",
            "| group | clients | approval | ratio | default rate among accepted | TPR | FPR | flag |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for g in table.get("groups", []):
            ratio = "too few" if g.get("too_few") else _fmt(g.get("approval_ratio"), 3)
            lines.append(
                f"| {g['group']} | {g['clients']} | {_pct(g.get('approval_rate'))} | {ratio} | "
                f"{_pct(g.get('default_rate_accepted'))} | {_pct(g.get('tpr'))} | {_pct(g.get('fpr'))} | "
                f"{'below floor' if g.get('flagged') else ''} |"
            )
        lines.append("")
    return lines


def _sensitive_text(manifest: Manifest, used: str) -> str:
    """Whether the features derived from the sensitive attributes are in the model, and what that costs."""
    from app.model.report import sensitive_lines

    rec = manifest.sensitive
    if rec is None:
        return f"Model features derived from them: {used} (exclusion {NOT_RECORDED})."
    feats = (rec.features or {}).items()
    names = "; ".join(f"{a}: {', '.join(n)}" for a, n in feats) or "none"
    verb = "EXCLUDED from the model (CREDIT_EXCLUDE_SENSITIVE)" if rec.excluded else "used by the model"
    text = f"Model features derived from them, {verb}: {names}."
    effect = sensitive_lines(manifest)[1:]
    return text + (f" Effect of the choice, {effect[0][len('effect on the ') :]}." if effect else "")


def render(manifest: Manifest | dict, fairness: dict | None = None, sensitive_attributes: tuple[str, ...] = ()) -> str:
    """The model card as markdown (see the module text)."""
    manifest = document_manifest(manifest)
    m = manifest.metrics
    costs = manifest.costs
    versions = manifest.versions
    features = manifest.features
    model_id = manifest.model_id or NOT_RECORDED
    # the attributes examined: those with values for fairness, else the ones the training configuration named
    sensitive_attributes = tuple(sensitive_attributes) or tuple((manifest.sensitive or Sensitive()).attributes or ())
    derived = sensitive_features(features, sensitive_attributes)
    used = "; ".join(f"{a}: {', '.join(names)}" for a, names in derived.items()) or "none"
    lines = [
        f"# Model card: {model_id[:12]}",
        "",
        f"- Model id (sha256 of model.txt): `{model_id}`",
        f"- Trained at: {manifest.trained_at or NOT_RECORDED}; app version {manifest.app_version or '?'}",
        "",
        "## Intended use and users",
        "",
        INTENDED_USE,
        "",
        OUT_OF_SCOPE,
        "",
        "## Data",
        "",
        "- Source: Home Credit Default Risk layout (application, bureau, previous applications, instalments, "
        "POS and card balances), real or generated by `credit generate`.",
        f"- Labelled clients: {_or(m.n_train)}, of whom {_or(m.positives)} defaulted.",
        f"- Period: {manifest.data_period or NOT_RECORDED}",
        f"- Fingerprint (sha256 over feature names and values): `{manifest.data_fingerprint or NOT_RECORDED}`",
        "",
        "## Features",
        "",
        f"- {manifest.n_features or len(features)} features, aggregated per client in SQL (`sql/features_*.sql`).",
        f"- Sensitive attributes examined: {', '.join(sensitive_attributes) or 'none'}. "
        + _sensitive_text(manifest, used),
        "- Most important (mean |SHAP|): " + (", ".join(n for n, _v in manifest.global_importance[:8]) or NOT_RECORDED),
        "",
        "## Honest performance (out-of-fold)",
        "",
        f"- Pooled out-of-fold AUC: {_fmt(m.oof_auc)}; fold mean {_fmt(m.auc_mean)} "
        f"± {_fmt(m.auc_std)} over {_or(m.folds, '?')} folds",
        f"- Cost per client at the threshold: {_fmt(m.cost_per_client)} (at 0.5: {_fmt(m.cost_per_client_at_0_5)})",
        f"- Imbalance handling: {_or(m.imbalance)}",
    ]
    for name, b in manifest.baselines.items():
        lines.append(f"- Baseline {name}: AUC {_fmt(b.oof_auc)}, cost per client {_fmt(b.cost_per_client)}")
    cal = manifest.calibration
    lines += [
        "",
        "## Calibration",
        "",
        (f"`{json.dumps(msgspec.to_builtins(cal))[:400]}`" if cal else f"Calibration map: {NOT_RECORDED}.")
        + " Realised calibration by score band is monitored by `credit performance`.",
        "",
        "## Fairness (training, out-of-fold)",
        "",
        *_fairness_section(fairness),
        "## Threshold and costs",
        "",
        f"- Refuse when the probability of default >= {_fmt(manifest.threshold)}",
        f"- Costs: accepting a defaulter {costs.get('fn', '?')}, refusing a good client {costs.get('fp', '?')}; the "
        "threshold minimises the out-of-fold business cost.",
        "",
        "## Known limitations",
        "",
        LIMITATIONS,
        "",
        "## Versions",
        "",
        *[f"- {k}: {v}" for k, v in sorted(versions.items())],
        f"- model id: `{model_id}`",
        "",
    ]
    return "\n".join(lines)


def write(
    model_dir: Path, manifest: Manifest | dict, fairness: dict | None, sensitive_attributes: tuple[str, ...]
) -> Path:
    """Write fairness.json (when given) and model_card.md beside the manifest; returns the card's path."""
    model_dir = Path(model_dir)
    manifest = document_manifest(manifest)
    if fairness is not None:
        atomic_write_json(model_dir / FAIRNESS_FILE, fairness | {"model_id": manifest.model_id})
    path = model_dir / CARD_FILE
    atomic_write_bytes(path, render(manifest, fairness, sensitive_attributes).encode("utf-8"))
    return path


def read(model_dir: Path) -> tuple[str | None, dict | None]:
    """(card markdown, fairness dict) from a model folder; None for a missing file."""
    model_dir = Path(model_dir)
    card = model_dir / CARD_FILE
    fair = model_dir / FAIRNESS_FILE
    return (
        card.read_text(encoding="utf-8") if card.is_file() else None,
        json.loads(fair.read_text()) if fair.is_file() else None,
    )
