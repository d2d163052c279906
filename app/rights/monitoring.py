"""Human decisions beside the model's (issue 32): how often people override or review, and whether they were right.

- `rates(store, period)`: override and review rates over the logged decisions (the scoring endpoints' rows, not
  what-ifs), by officer, by score band and by period (GET /monitoring/human-decisions, the dashboard).
  The log records the key's role, not the person, so the rate per officer divides by the decisions of that
  officer only when the log has a user column (`user`, added by the login); otherwise it gives counts and shares.
- `performance_section(store, fn_cost, fp_cost, since, until)`: for each observed outcome, the client's latest
  decision at or before it (the join `credit performance` uses), its automated decision and the decision in force
  after overrides and reviews; where a person changed the decision, the realised cost of the model's decision and
  of the person's, side by side (`credit performance` prints it under the model figures).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import apsw

DECISION_ENDPOINTS = ("GET /clients/{id}/score", "POST /score", "POST /score/batch")
BANDS = (0.0, 0.05, 0.10, 0.20, 0.30, 0.50, 1.0000001)
USER_COLUMNS = ("user", "username", "user_name")


def band_of(p: float) -> str:
    for lo, hi in zip(BANDS, BANDS[1:], strict=False):
        if lo <= p < hi:
            return f"{lo:.2f}-{min(hi, 1.0):.2f}"
    return "unknown"


def period_of(ts: float, period: str) -> str:
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    if period == "day":
        return d.strftime("%Y-%m-%d")
    if period == "week":
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    if period == "month":
        return d.strftime("%Y-%m")
    return "all"


def _user_column(store: apsw.Connection) -> str | None:
    cols = {r[1] for r in store.execute("PRAGMA table_info(prediction_log)")}
    return next((c for c in USER_COLUMNS if c in cols), None)


def _acts(store: apsw.Connection) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    from app.rights.records import _rows

    overrides = {r["request_id"]: r for r in _rows(store.execute("SELECT * FROM overrides"))}
    reviews: dict[str, list[dict]] = {}
    for r in _rows(store.execute("SELECT * FROM reviews ORDER BY id")):
        reviews.setdefault(r["request_id"], []).append(r)
    return overrides, reviews


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def rates(
    store: apsw.Connection, period: str = "day", since: float | None = None, until: float | None = None
) -> dict[str, Any]:
    """Override and review counts and rates by officer, score band and period, over the decisions logged in
    [since, until)."""
    user = _user_column(store)
    marks = ", ".join("?" for _ in DECISION_ENDPOINTS)
    sel = f", {user}" if user else ", NULL"
    lo = -math.inf if since is None else since
    hi = math.inf if until is None else until
    decisions = store.execute(
        f"SELECT request_id, ts, probability{sel} FROM prediction_log WHERE endpoint IN ({marks}) AND ts >= ?"
        " AND ts < ?",
        (*DECISION_ENDPOINTS, lo, hi),
    ).fetchall()
    window = {rid for rid, *_ in decisions}
    overrides, reviews = _acts(store)
    overrides = {k: v for k, v in overrides.items() if k in window}
    reviews = {k: v for k, v in reviews.items() if k in window}
    by_band: dict[str, dict[str, int]] = {}
    by_period: dict[str, dict[str, int]] = {}
    by_officer: dict[str, dict[str, Any]] = {}
    total = {"decisions": 0, "overrides": 0, "reviews": 0, "overturned": 0}
    for rid, ts, p, who in decisions:
        ov, rv = overrides.get(rid), reviews.get(rid, [])
        counts = {
            "decisions": 1,
            "overrides": int(ov is not None),
            "reviews": int(bool(rv)),
            "overturned": int(any(r["outcome"] == "overturn" for r in rv)),
        }
        for key, table in ((band_of(p), by_band), (period_of(ts, period), by_period)):
            row = table.setdefault(key, dict.fromkeys(total, 0))
            for k, v in counts.items():
                row[k] += v
        for k, v in counts.items():
            total[k] += v
        if who is not None:
            by_officer.setdefault(str(who), {"officer": str(who), "decisions": 0})["decisions"] += 1
    for ov in overrides.values():
        o = by_officer.setdefault(ov["officer"], {"officer": ov["officer"], "decisions": 0 if user else None})
        o["overrides"] = o.get("overrides", 0) + 1
        o["granted"] = o.get("granted", 0) + (ov["decision"] == "accept")
        o["pending"] = o.get("pending", 0) + (ov["status"] == "pending")
        o["rejected"] = o.get("rejected", 0) + (ov["status"] == "rejected")
    for rv_list in reviews.values():
        for rv in rv_list:
            o = by_officer.setdefault(
                rv["requested_by"], {"officer": rv["requested_by"], "decisions": 0 if user else None}
            )
            o["reviews_recorded"] = o.get("reviews_recorded", 0) + 1
    n_overrides = max(total["overrides"], 1)
    officers = []
    for o in sorted(by_officer.values(), key=lambda r: r["officer"]):
        o.setdefault("overrides", 0)
        o.setdefault("granted", 0)
        o.setdefault("pending", 0)
        o.setdefault("rejected", 0)
        o.setdefault("reviews_recorded", 0)
        o["override_rate"] = _rate(o["overrides"], o["decisions"]) if o["decisions"] else None
        o["review_rate"] = _rate(o["reviews_recorded"], o["decisions"]) if o["decisions"] else None
        o["share_of_overrides"] = o["overrides"] / n_overrides if total["overrides"] else 0.0
        officers.append(o)

    def with_rates(key: str, row: dict[str, int]) -> dict[str, Any]:
        return {
            key: row.get(key),
            **row,
            "override_rate": _rate(row["overrides"], row["decisions"]),
            "review_rate": _rate(row["reviews"], row["decisions"]),
            "overturn_rate": _rate(row["overturned"], row["reviews"]),
        }

    return {
        "period": period,
        "overall": with_rates("all", {"all": "all", **total}) | {"all": None},
        "by_band": [with_rates("band", {"band": k, **v}) for k, v in sorted(by_band.items())],
        "by_period": [with_rates("period", {"period": k, **v}) for k, v in sorted(by_period.items())],
        "by_officer": officers,
        "officer_rates": "per officer" if user else "counts only: the log does not record the person who asked",
    }


JOIN_SQL = """
SELECT o.client_id, o.defaulted, max(l.ts), l.request_id, l.probability, l.decision
FROM outcomes AS o
JOIN prediction_log AS l ON l.client_id = o.client_id AND l.ts <= o.observed_at AND l.ts >= ?1 AND l.ts < ?2
GROUP BY o.client_id
"""


def _cost(decision: str, defaulted: int, fn_cost: float, fp_cost: float) -> float:
    if decision == "accept":
        return fn_cost if defaulted else 0.0
    return 0.0 if defaulted else fp_cost


def performance_section(
    store: apsw.Connection, fn_cost: float, fp_cost: float, since: float | None = None, until: float | None = None
) -> dict[str, Any]:
    """Where outcomes are known: the model's decisions beside the decisions in force after people acted."""
    from app.rights.records import decision_in_force

    has = store.execute("SELECT 1 FROM sqlite_schema WHERE name = 'overrides'").fetchall()
    lo = -math.inf if since is None else since
    hi = math.inf if until is None else until
    rows = store.execute(JOIN_SQL, (lo, hi)).fetchall()
    changed, same = [], 0
    model_cost = final_cost = 0.0
    for cid, defaulted, _ts, rid, p, model_decision in rows:
        final = decision_in_force(store, {"request_id": rid, "decision": model_decision}) if has else model_decision
        mc, fc = _cost(model_decision, defaulted, fn_cost, fp_cost), _cost(final, defaulted, fn_cost, fp_cost)
        model_cost += mc
        final_cost += fc
        if final != model_decision:
            changed.append(
                {
                    "client_id": cid,
                    "request_id": rid,
                    "probability": p,
                    "model": model_decision,
                    "final": final,
                    "defaulted": defaulted,
                    "model_cost": mc,
                    "human_cost": fc,
                }
            )
        else:
            same += 1
    n = len(rows)
    right = lambda d, y: (d == "accept") != bool(y)  # noqa: E731 - accept a repayer, refuse a defaulter
    return {
        "outcomes": n,
        "changed_by_people": len(changed),
        "kept": same,
        "model_cost_per_client": model_cost / n if n else None,
        "final_cost_per_client": final_cost / n if n else None,
        "changed": {
            "model_right": sum(right(c["model"], c["defaulted"]) for c in changed),
            "people_right": sum(right(c["final"], c["defaulted"]) for c in changed),
            "model_cost": sum(c["model_cost"] for c in changed),
            "people_cost": sum(c["human_cost"] for c in changed),
            "granted_then_defaulted": sum(c["final"] == "accept" and c["defaulted"] == 1 for c in changed),
        },
        "note": "outcomes are observed for granted credit only in real life: refusals people confirmed are not judged",
    }


def rates_text(r: dict[str, Any]) -> str:
    """Override and review rates, for `credit performance`."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    lines = [
        f"{'override / review rates':<24} {'decisions':>9} {'overrides':>9} {'rate':>6} {'reviews':>7} {'rate':>6}"
        f" {'overturned':>10}"
    ]
    rows = [("all", r["overall"])] + [(b["band"], b) for b in r["by_band"]] + [(p["period"], p) for p in r["by_period"]]
    for name, x in rows:
        lines.append(
            f"{name:<24} {x['decisions']:>9} {x['overrides']:>9} {pct(x['override_rate']):>6} "
            f"{x['reviews']:>7} {pct(x['review_rate']):>6} {x['overturned']:>10}"
        )
    for o in r["by_officer"]:
        lines.append(
            f"officer {o['officer']:<16} overrides {o['overrides']} (granted {o['granted']}, pending "
            f"{o['pending']}, rejected {o['rejected']}), reviews recorded {o['reviews_recorded']}, "
            f"override rate {pct(o['override_rate'])}"
        )
    return "\n".join(lines)


def performance_text(sec: dict[str, Any]) -> str:
    """The section's lines for `credit performance`."""
    tail = "\n" + rates_text(sec["rates"]) if "rates" in sec else ""
    if not sec["outcomes"]:
        return "human decisions: no outcome joins a decision" + tail
    c = sec["changed"]
    return (
        tail.lstrip("\n")
        + "\n"
        + (
            f"human decisions: {sec['changed_by_people']} of {sec['outcomes']} decisions with an outcome changed by "
            f"people (overrides in force, reviews overturned)\n"
            f"  on those: model right {c['model_right']}, people right {c['people_right']}; cost model "
            f"{c['model_cost']:.1f} vs people {c['people_cost']:.1f}; "
            f"{c['granted_then_defaulted']} granted, then defaulted\n"
            f"  cost per client: model alone {sec['model_cost_per_client']:.4f}, decisions in force "
            f"{sec['final_cost_per_client']:.4f}"
        )
    )
