"""The typed sections of manifest.json that `credit train` writes (app/model/train.py), read by attribute.

Every reader of a section (the model card, the training report, the dashboard's model pages, `credit train`'s
summary, the benchmarks) reads these fields, never a key of a dict: one owner of each field's name.

Two rules keep the file as train writes it, key for key (`manifest_dict` of a typed manifest is the JSON object
train wrote, none lost, none added):

- the fields are declared in the order train writes them (the file is not sorted);
- a field a manifest may lack defaults to None and is left out when None (`omit_defaults`), so an older or
  sparser manifest loads and writes back without the keys it never had; the two fields train may write as
  null (`Sensitive.effect`, `Search.budget_seconds`) default to UNSET instead, so a written null stays.

`params` (LightGBM's own parameters, an open set) and `Search.final_trials` (one record per search trial, its
keys the searched parameters) stay dicts: they are shown as they are, not read field by field.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "UNSET",
    "Band",
    "Calibration",
    "CalibrationFigures",
    "Chosen",
    "Confusion",
    "Distributed",
    "Effect",
    "EffectFigures",
    "Evaluation",
    "Figures",
    "HeldOut",
    "Metrics",
    "Reliability",
    "ReliabilityBin",
    "Search",
    "Sensitive",
    "ShapParity",
    "UnsetType",
]


class _Section(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A manifest section: every field optional (older manifests), an unset one absent from the file."""


class Confusion(_Section):
    """Decisions at the cross-fitted threshold against the labels."""

    tn: int | None = None
    fp: int | None = None
    fn: int | None = None
    tp: int | None = None


class CalibrationFigures(_Section):
    """Brier score, log-loss and expected calibration error of out-of-fold probabilities."""

    brier: float | None = None
    log_loss: float | None = None
    ece: float | None = None


class Metrics(_Section):
    """The champion's honest (out-of-fold) figures: `metrics`."""

    oof_auc: float | None = None
    auc_mean: float | None = None
    auc_std: float | None = None
    auc_folds: list[float] | None = None
    cost_per_client: float | None = None
    confusion: Confusion | None = None
    brier: float | None = None
    log_loss: float | None = None
    ece: float | None = None
    honest: bool | None = None
    n_estimators: int | None = None
    n_train: int | None = None
    positives: int | None = None
    folds: int | None = None
    cost_per_client_at_0_5: float | None = None  # written by older trainings only; the card shows it when present
    imbalance: str | None = None  # idem


class Figures(_Section):
    """One candidate's or baseline's nested-evaluation figures: a value of `candidates` and of `baselines`."""

    oof_auc: float | None = None
    auc_mean: float | None = None
    auc_std: float | None = None
    auc_folds: list[float] | None = None
    cost_per_client: float | None = None
    fold_margin_thresholds: list[float] | None = None
    fold_costs: list[float] | None = None
    confusion: Confusion | None = None
    uncalibrated: CalibrationFigures | None = None
    calibrated: CalibrationFigures | None = None
    n_trees: list[int] | None = None  # per outer fold (LightGBM and the blend; empty for the others)
    inner_auc: list[float] | None = None
    seconds: float | None = None
    fold_weights: list[float] | None = None  # the blend's
    weight: float | None = None  # the blend's
    calibration: str | None = None  # the calibration method chosen for this candidate
    honest_log_loss: dict[str, float] | None = None  # per calibration method


class Calibration(_Section):
    """The Platt map p = sigmoid(a * margin + b) (identity: method "none", a 1, b 0): `calibration`."""

    method: str | None = None
    a: float | None = None
    b: float | None = None
    honest_log_loss: dict[str, float] | None = None


class EffectFigures(_Section):
    oof_auc: float | None = None
    auc_mean: float | None = None
    auc_std: float | None = None
    cost_per_client: float | None = None


class Effect(_Section):
    """The champion's figures with and without the sensitive-derived features, on the same folds."""

    with_: EffectFigures | None = msgspec.field(default=None, name="with")
    without: EffectFigures | None = None
    candidate: str | None = None
    procedure: str | None = None


class Sensitive(_Section):
    """Which features derive from the sensitive attributes, whether they were excluded, and the effect: `sensitive`."""

    attributes: list[str] | None = None
    excluded: bool | None = None
    features: dict[str, list[str]] | None = None  # attribute -> model features derived from it
    effect: Effect | None | UnsetType = UNSET  # null when no feature derives from the attributes


class ReliabilityBin(_Section):
    predicted: float | None = None
    observed: float | None = None
    n: int | None = None


class Reliability(_Section):
    uncalibrated: list[ReliabilityBin] | None = None
    calibrated: list[ReliabilityBin] | None = None


class Chosen(_Section):
    """The shipped threshold and its cost per client on the out-of-fold probabilities."""

    threshold: float | None = None
    cost_per_client: float | None = None


class Band(_Section):
    """A score decile: lowest and highest probability, clients, observed default rate."""

    low: float | None = None
    high: float | None = None
    n: int | None = None
    default_rate: float | None = None


class Evaluation(_Section):
    """The procedure, the trivial policies and the champion's curves: `evaluation`."""

    procedure: str | None = None
    folds: int | None = None
    trivial: dict[str, float] | None = None  # policy -> cost per client
    beats_trivial: bool | None = None
    roc: list[list[float]] | None = None  # [false positive rate, true positive rate]
    reliability: Reliability | None = None
    cost_curve: list[list[float]] | None = None  # [threshold, cost per client]
    chosen: Chosen | None = None
    score_bands: list[Band] | None = None
    seconds: float | None = None


class Search(_Section):
    """The hyper-parameter search's settings and the final fit's trials: `search`."""

    trials_per_search: int | None = None
    bags: int | None = None
    budget_seconds: float | None | UnsetType = UNSET  # null: no time budget
    threads: int | None = None
    monotone: dict[str, int] | None = None
    final_trials: list[dict[str, Any]] | None = None
    stopped_by_time: bool | None = None


class HeldOut(_Section):
    """The shipped model's figures on the held-out slice no search or fit saw."""

    rows: int | None = None
    positives: int | None = None
    auc: float | None = None
    cost_per_client: float | None = None
    brier: float | None = None
    sample_fit_auc: float | None = None


class Distributed(_Section):
    """A fit on a Dask cluster (app/model/distributed.py): `distributed`."""

    design: str | None = None
    clients: int | None = None
    sample_rows: int | None = None
    held_out_rows: int | None = None
    workers: int | None = None
    sample_seconds: float | None = None
    final_fit: str | None = None  # "cluster" or "sample"
    final_rows: int | None = None
    final_seconds: float | None = None
    why: str | None = None
    held_out: HeldOut | None = None


class ShapParity(_Section):
    """The compiled SHAP path's parity gate (`library.shap`, written by `credit compile`)."""

    parity_max_abs_diff: float | None = None
    parity_rows: int | None = None
    tolerance: float | None = None
