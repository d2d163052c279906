"""Fairness of decisions per group of a sensitive attribute (fairlearn's MetricFrame).

Per group: clients decided, approval rate, and among clients with an observed outcome: default rate among
the accepted, true positive rate (defaulters refused / defaulters) and false positive rate (good clients
refused / good clients); "positive" is a default and the positive prediction is a refusal. The
approval-rate ratio divides a group's approval rate by the best-treated group's; below `ratio_floor` (the
four-fifths rule, 0.8) the group is flagged. Groups with fewer than `min_group` clients get no ratio and
are not candidates for best-treated (too few to compare).

Sensitive attributes are names: `age_band` (from clients.age_years), or any column of the data's
`clients` table (`gender`, `family_status`, ...). Missing values form the group "unknown".

Pure: arrays in, a report out (plus `sensitive_values`, which reads the data's `clients` table). Used at
training (out-of-fold predictions, app.model.card) and in monitoring (app.monitoring.fairness: the latest
decision per client in the log window, with outcomes where observed, counted in SQL).
"""

from __future__ import annotations

import math

import numpy as np

from app.errors import CreditError

DEFAULT_ATTRIBUTES = ("gender", "age_band", "family_status")
AGE_BANDS = ((-math.inf, 25, "<25"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"), (55, 65, "55-64"))
RATIO_FLOOR = 0.8
MIN_GROUP = 30
UNKNOWN = "unknown"


class FairnessError(CreditError, ValueError):
    pass


class NoDecisions(FairnessError):
    """Nothing to examine: no decision in the window (`credit fairness` exits with status 2)."""

    exit_code = 2


def parse_attributes(text: str | None) -> tuple[str, ...]:
    """'gender, age_band' -> ('gender', 'age_band'); empty -> the defaults."""
    names = tuple(n.strip() for n in (text or "").split(",") if n.strip())
    return names or DEFAULT_ATTRIBUTES


# Model features derived from each sensitive attribute (app/sql/features_application.sql): the one place that
# says which features `credit train --exclude-sensitive` keeps out of the model and the model card lists.
def _derived(attribute: str, name: str) -> bool:
    if attribute == "gender":
        return name == "GENDER_F" or name.startswith("CODE_GENDER")
    if attribute == "age_band":
        return name in ("DAYS_BIRTH", "AGE_YEARS", "CAR_AGE_AGE_RATIO") or name.endswith("_BIRTH_RATIO")
    if attribute == "family_status":
        return name.startswith(("FAMILY_", "NAME_FAMILY_STATUS"))
    return name.lower() == attribute.lower()


def derived_features(features: list[str], attributes: tuple[str, ...]) -> dict[str, list[str]]:
    """{attribute: [model features derived from it]} (only attributes with at least one)."""
    out = {a: [n for n in features if _derived(a, n)] for a in attributes}
    return {a: names for a, names in out.items() if names}


def age_band(age_years: np.ndarray) -> np.ndarray:
    a = np.asarray(age_years, dtype=np.float64)
    out = np.full(len(a), UNKNOWN, dtype=object)
    out[a >= AGE_BANDS[-1][1]] = f"{AGE_BANDS[-1][1]}+"
    for lo, hi, label in AGE_BANDS:
        out[(a >= lo) & (a < hi)] = label
    return out


# ---- metrics: weighted (see _compress), NaN (never a warning) when a group has no row to count -------------


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else math.nan


def approval_rate(y_true, y_pred, sample_weight) -> float:
    """y_pred = refused (bool)."""
    r, w = np.asarray(y_pred, dtype=bool), np.asarray(sample_weight, dtype=np.float64)
    return _ratio(w[~r].sum(), w.sum())


def default_rate_accepted(y_true, y_pred, sample_weight) -> float:
    y, r, w = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool), np.asarray(sample_weight, dtype=float)
    return _ratio(w[y & ~r].sum(), w[~r].sum())


def true_positive_rate(y_true, y_pred, sample_weight) -> float:
    y, r, w = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool), np.asarray(sample_weight, dtype=float)
    return _ratio(w[y & r].sum(), w[y].sum())


def false_positive_rate(y_true, y_pred, sample_weight) -> float:
    y, r, w = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool), np.asarray(sample_weight, dtype=float)
    return _ratio(w[~y & r].sum(), w[~y].sum())


def count(y_true, y_pred, sample_weight) -> int:
    return int(np.sum(sample_weight))


def defaults(y_true, y_pred, sample_weight) -> int:
    return int(np.sum(np.asarray(sample_weight)[np.asarray(y_true, dtype=bool)]))


def _compress(groups: np.ndarray, y: np.ndarray, refused: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """One row per distinct (group, outcome, decision), weighted by the number of clients it stands for.
    fairlearn 0.15 copies every row through np.stack for every metric and group (70 s for 300,000 clients
    here); on the compressed rows the same weighted metrics take milliseconds and give the same figures."""
    labels, code = np.unique(groups.astype(str), return_inverse=True)
    key = code * 4 + y.astype(np.int64) * 2 + refused.astype(np.int64)
    present, inverse = np.unique(key, return_inverse=True)
    weight = np.bincount(inverse, weights=weights, minlength=len(present))
    return labels[present // 4].astype(object), (present // 2) % 2 == 1, present % 2 == 1, weight


def _frame(metrics: dict, groups: np.ndarray, y: np.ndarray, refused: np.ndarray, weights: np.ndarray):
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    g, yc, rc, w = _compress(groups, y, refused, weights)
    return MetricFrame(
        metrics=metrics,
        y_true=yc,
        y_pred=rc,
        sensitive_features=pd.Series(g, name="group"),
        sample_params={name: {"sample_weight": w} for name in metrics},
    ).by_group


def _clean(v) -> float | int | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def group_table(
    groups: np.ndarray,
    refused: np.ndarray,
    defaulted: np.ndarray,
    *,
    min_group: int = MIN_GROUP,
    ratio_floor: float = RATIO_FLOOR,
    weights: np.ndarray | None = None,
) -> dict:
    """Fairness figures of one sensitive attribute. `defaulted` is float: 1, 0, or NaN (no outcome). `weights`:
    how many clients each row stands for (default one each)."""
    groups = np.asarray(groups, dtype=object)
    refused = np.asarray(refused, dtype=bool)
    defaulted = np.asarray(defaulted, dtype=np.float64)
    weights = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not len(groups) == len(refused) == len(defaulted) == len(weights):
        raise FairnessError("groups, decisions, outcomes and weights differ in length")
    if len(groups) == 0:
        raise NoDecisions("no decisions to examine")
    decided = _frame(
        {"clients": count, "approval_rate": approval_rate},
        groups,
        np.zeros(len(refused), dtype=bool),
        refused,
        weights,
    )
    seen = ~np.isnan(defaulted)
    observed = None
    if seen.any():
        observed = _frame(
            {
                "outcomes": count,
                "defaults": defaults,
                "default_rate_accepted": default_rate_accepted,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
            },
            groups[seen],
            defaulted[seen].astype(bool),
            refused[seen],
            weights[seen],
        )
    rows = []
    for g in decided.index:
        n = int(decided.loc[g, "clients"])
        row = {"group": str(g), "clients": n, "approval_rate": _clean(decided.loc[g, "approval_rate"])}
        if observed is not None and g in observed.index:
            o = observed.loc[g]
            row |= {
                "outcomes": int(o["outcomes"]),
                "defaults": int(o["defaults"]),
                "default_rate_accepted": _clean(o["default_rate_accepted"]),
                "tpr": _clean(o["tpr"]),
                "fpr": _clean(o["fpr"]),
            }
        else:
            row |= {"outcomes": 0, "defaults": 0, "default_rate_accepted": None, "tpr": None, "fpr": None}
        row["too_few"] = n < min_group
        rows.append(row)
    eligible = [r for r in rows if not r["too_few"] and r["approval_rate"] is not None]
    best = max(eligible, key=lambda r: r["approval_rate"], default=None)
    for r in rows:
        if best is None or r["too_few"] or not best["approval_rate"]:
            r["approval_ratio"], r["flagged"] = None, False
        else:
            r["approval_ratio"] = r["approval_rate"] / best["approval_rate"]
            r["flagged"] = r["approval_ratio"] < ratio_floor
    return {
        "best_group": None if best is None else best["group"],
        "min_ratio": min((r["approval_ratio"] for r in rows if r["approval_ratio"] is not None), default=None),
        "flagged": [r["group"] for r in rows if r["flagged"]],
        "groups": rows,
    }


def fairness(
    sensitive: dict[str, np.ndarray],
    refused: np.ndarray,
    defaulted: np.ndarray,
    *,
    min_group: int = MIN_GROUP,
    ratio_floor: float = RATIO_FLOOR,
    weights: np.ndarray | None = None,
) -> dict:
    """group_table for every attribute, in order."""
    attrs = {
        name: group_table(groups, refused, defaulted, min_group=min_group, ratio_floor=ratio_floor, weights=weights)
        for name, groups in sensitive.items()
    }
    w = np.ones(len(refused)) if weights is None else np.asarray(weights, dtype=np.float64)
    seen = ~np.isnan(np.asarray(defaulted, dtype=np.float64))
    return {
        "ratio_floor": ratio_floor,
        "min_group": min_group,
        "definitions": {
            "approval_rate": "accepted / decided",
            "default_rate_accepted": "defaulted / accepted (clients with an outcome)",
            "tpr": "refused defaulters / defaulters",
            "fpr": "refused good clients / good clients",
            "approval_ratio": "approval rate / approval rate of the best-treated group (flag below ratio_floor)",
        },
        "clients": int(w.sum()),
        "outcomes": int(w[seen].sum()),
        "attributes": attrs,
        "flagged": {k: v["flagged"] for k, v in attrs.items() if v["flagged"]},
    }


# ---- reading the attributes and the live decisions ------------------------------------------------------


def sensitive_values(data_conn, client_ids: np.ndarray, attributes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each attribute's value for each client id (data's `clients` table); unknown ids -> 'unknown'."""
    cols = {r[1] for r in data_conn.execute("PRAGMA table_info(clients)")}
    wanted = []
    for a in attributes:
        col = "age_years" if a == "age_band" else a
        if col not in cols:
            raise FairnessError(f"sensitive attribute {a!r}: no column {col!r} in the clients table")
        wanted.append(col)
    uniq = list(dict.fromkeys(wanted))
    select = ", ".join(f'"{c}"' for c in uniq)
    rows = data_conn.execute(f"SELECT client_id, {select} FROM clients ORDER BY client_id").fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    client_ids = np.asarray(client_ids, dtype=np.int64)
    n = len(client_ids)
    pos = np.searchsorted(ids, client_ids)
    found = pos < len(ids)
    found[found] = ids[pos[found]] == client_ids[found]
    at = pos[found]
    out: dict[str, np.ndarray] = {}
    for a, col in zip(attributes, wanted, strict=True):
        j = uniq.index(col) + 1
        if a == "age_band":
            ages = np.full(n, np.nan)
            ages[found] = np.array([np.nan if r[j] is None else float(r[j]) for r in rows], dtype=np.float64)[at]
            out[a] = age_band(ages)
        else:
            vals = np.full(n, UNKNOWN, dtype=object)
            vals[found] = np.array([UNKNOWN if r[j] is None else str(r[j]) for r in rows], dtype=object)[at]
            out[a] = vals
    return out
