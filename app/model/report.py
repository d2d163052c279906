"""The model report: comparison table (terminal) and report.html (inline SVG, no script, no network).

Everything is drawn from the manifest (candidates, baselines, evaluation curves), the one owner of
these figures; the dashboard's model page draws the same series from GET /model.
"""

from __future__ import annotations

import html as _html
from collections.abc import Callable
from typing import Any

from app.scoring.bundle import Champion, Manifest, document_manifest
from app.scoring.sections import Calibration, Effect, Reliability

NAMES = {
    "lightgbm": "LightGBM (tuned)",
    "scorecard": "logistic scorecard (WoE)",
    "blend": "blend of LightGBM and scorecard",
    "logistic_regression": "logistic regression (baseline)",
    "accept_all": "accept everybody",
    "refuse_all": "refuse everybody",
}


def line(kind: str, fig: dict[str, Any]) -> str:
    """A candidate's figures as `credit train` prints them while it runs (the training's dict, before the manifest)."""
    c = fig["confusion"]
    return (
        f"{NAMES.get(kind, kind):<32s} AUC {fig['oof_auc']:.4f} (folds {fig['auc_mean']:.4f} ± {fig['auc_std']:.4f}) | "
        f"honest cost/client {fig['cost_per_client']:.4f} | Brier {fig['calibrated']['brier']:.4f} | "
        f"tn={c['tn']} fp={c['fp']} fn={c['fn']} tp={c['tp']}"
    )


def rows(manifest: Manifest | dict) -> list[dict[str, Any]]:
    """One row per candidate, baseline and trivial policy: name, role, AUC, fold mean ± std, cost, Brier."""
    manifest = document_manifest(manifest)
    champ = manifest.champion.kind if manifest.champion is not None else None
    out = []
    for group, role in ((manifest.candidates, "candidate"), (manifest.baselines, "baseline")):
        for kind, m in group.items():
            out.append(
                {
                    "kind": kind,
                    "name": NAMES.get(kind, kind),
                    "role": "champion" if kind == champ else role,
                    "auc": m.oof_auc,
                    "auc_mean": m.auc_mean,
                    "auc_std": m.auc_std,
                    "cost": m.cost_per_client,
                    "brier": m.calibrated.brier if m.calibrated is not None else None,
                    "brier_before": m.uncalibrated.brier if m.uncalibrated is not None else None,
                    "calibration": m.calibration,
                }
            )
    for kind, cost in (manifest.evaluation.trivial or {}).items():
        out.append({"kind": kind, "name": NAMES.get(kind, kind), "role": "trivial", "auc": 0.5, "cost": cost})
    return out


def _or(v: Any, missing: str) -> Any:
    """The value, or `missing` when the manifest does not record it."""
    return missing if v is None else v


def _f(v: Any, fmt: str = ".4f") -> str:
    return "—" if v is None else format(float(v), fmt)


def _spread(r: dict) -> str:
    """'0.7512 ± 0.0101', or one dash for a row without folds (a baseline, a trivial policy): never '— ± —'."""
    return f"{_f(r.get('auc_mean'))} ± {_f(r.get('auc_std'))}" if r.get("auc_mean") is not None else "—"


def sensitive_lines(manifest: Manifest | dict) -> list[str]:
    """The sensitive-features choice and its effect on the champion's honest AUC and cost (plain text)."""
    rec = document_manifest(manifest).sensitive
    if not rec:
        return []
    feats = [n for names in (rec.features or {}).values() for n in names]
    attrs = ", ".join(rec.attributes or []) or "none"
    if not feats:
        return [f"sensitive attributes ({attrs}): no model feature derives from them"]
    out = [
        f"sensitive attributes ({attrs}): {len(feats)} derived features "
        + ("EXCLUDED from the model" if rec.excluded else "used by the model")
        + f" ({', '.join(feats)})"
    ]
    eff = rec.effect or Effect()
    if eff.with_ and eff.without:
        w, wo = eff.with_, eff.without
        out.append(
            f"effect on the champion ({NAMES.get(eff.candidate, eff.candidate)}, same folds): "
            f"with them AUC {_f(w.oof_auc)}, cost/client {_f(w.cost_per_client)}; without them AUC "
            f"{_f(wo.oof_auc)}, cost/client {_f(wo.cost_per_client)} "
            f"(excluding changes AUC by {float(wo.oof_auc) - float(w.oof_auc):+.4f}, cost by "
            f"{float(wo.cost_per_client) - float(w.cost_per_client):+.4f})"
        )
    return out


def table(manifest: Manifest | dict) -> list[str]:
    manifest = document_manifest(manifest)
    head = f"{'':<32s} {'role':<10s} {'AUC':>7s} {'fold mean ± std':>17s} {'cost/client':>12s} {'Brier':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows(manifest):
        spread = _spread(r)
        lines.append(
            f"{r['name']:<32s} {r['role']:<10s} {_f(r['auc']):>7s} {spread:>17s} {_f(r['cost']):>12s} "
            f"{_f(r.get('brier')):>7s}"
        )
    cal = manifest.calibration or Calibration()
    champ = manifest.champion or Champion(kind="")
    lines.append(
        f"champion: {NAMES.get(champ.kind, champ.kind or None)} ({champ.why or None}); calibration "
        f"{cal.method} (a={_f(cal.a)}, b={_f(cal.b)}); threshold {_f(manifest.threshold)}"
        + ("; FORCED although it does not beat the trivial policy" if champ.forced else "")
    )
    return lines + sensitive_lines(manifest)


# ---------------------------------------------------------------- SVG charts


def _svg(
    series: list[tuple[str, list[list[float]], str]],
    *,
    x_label: str,
    y_label: str,
    diag: bool = False,
    point: tuple[float, float] | None = None,
    bars: bool = False,
    tick: Callable[[float], str] = lambda v: f"{v:.3g}",
) -> str:
    """One chart as inline SVG; `tick` writes the axes' numbers (the dashboard passes its locale's). Bars are
    labelled one by one with their x value (a decile's number), lines get the axes' two ends."""
    w, h, pad = 420, 300, 44
    xs = [p[0] for _, pts, _ in series for p in pts] or [0, 1]
    ys = [p[1] for _, pts, _ in series for p in pts] or [0, 1]
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(0.0, min(ys)), max(ys) or 1.0
    if diag:
        x1 = y1 = max(x1, y1)

    def sx(v: float) -> float:
        return pad + (v - x0) / ((x1 - x0) or 1) * (w - 2 * pad)

    def sy(v: float) -> float:
        return h - pad - (v - y0) / ((y1 - y0) or 1) * (h - 2 * pad)

    parts = [f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" xmlns="http://www.w3.org/2000/svg">']
    parts.append(f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#999"/>')
    if diag:
        parts.append(
            f'<line x1="{sx(x0)}" y1="{sy(y0)}" x2="{sx(x1)}" y2="{sy(y1)}" stroke="#bbb" stroke-dasharray="4"/>'
        )
    for k, (name, pts, color) in enumerate(series):
        if bars:
            bw = (w - 2 * pad) / max(len(pts), 1) * 0.8
            for i, (x, v) in enumerate(pts):
                bx = pad + (i + 0.1) * (w - 2 * pad) / max(len(pts), 1)
                parts.append(
                    f'<rect x="{bx:.1f}" y="{sy(v):.1f}" width="{bw:.1f}" '
                    f'height="{sy(y0) - sy(v):.1f}" fill="{color}"/>'
                )
                parts.append(
                    f'<text x="{bx + bw / 2:.1f}" y="{h - pad + 14}" font-size="10" text-anchor="middle">'
                    f"{_html.escape(tick(x))}</text>"
                )
        else:
            d = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in pts)
            parts.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(
            f'<text x="{pad + 6}" y="{pad + 16 + 14 * k}" font-size="12" fill="{color}">{_html.escape(name)}</text>'
        )
    if point is not None:
        parts.append(f'<circle cx="{sx(point[0]):.1f}" cy="{sy(point[1]):.1f}" r="5" fill="#d62728"/>')
    parts.append(f'<text x="{w / 2}" y="{h - 8}" font-size="12" text-anchor="middle">{_html.escape(x_label)}</text>')
    parts.append(
        f'<text x="12" y="{h / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 12 {h / 2})">'
        f"{_html.escape(y_label)}</text>"
    )
    for v in () if bars else (x0, x1):
        parts.append(f'<text x="{sx(v)}" y="{h - pad + 14}" font-size="10" text-anchor="middle">{tick(v)}</text>')
    for v in (y0, y1):
        parts.append(f'<text x="{pad - 4}" y="{sy(v) + 4}" font-size="10" text-anchor="end">{tick(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts(manifest: Manifest | dict) -> dict[str, str]:
    ev = document_manifest(manifest).evaluation
    rel = ev.reliability or Reliability()
    chosen = ev.chosen
    bands = ev.score_bands or []
    return {
        "ROC curve (out-of-fold)": _svg(
            [("champion", ev.roc or [], "#1f77b4")],
            x_label="false positive rate",
            y_label="true positive rate",
            diag=True,
        ),
        "Reliability (out-of-fold, 10 equal-count bins)": _svg(
            [
                (
                    "before calibration",
                    [[r.predicted, r.observed] for r in rel.uncalibrated or []],
                    "#ff7f0e",
                ),
                ("after calibration", [[r.predicted, r.observed] for r in rel.calibrated or []], "#2ca02c"),
            ],
            x_label="predicted probability of default",
            y_label="observed default rate",
            diag=True,
        ),
        "Cost per client against threshold": _svg(
            [("cost per client", ev.cost_curve or [], "#9467bd")],
            x_label="threshold (calibrated probability)",
            y_label="cost per client",
            point=(chosen.threshold, chosen.cost_per_client) if chosen is not None else None,
        ),
        "Observed default rate by score decile": _svg(
            [("default rate", [[i + 1, b.default_rate] for i, b in enumerate(bands)], "#8c564b")],
            x_label="score decile, 1 to 10 (low to high risk), numbered as in the table",
            y_label="observed default rate",
            bars=True,
        ),
    }


def html(manifest: Manifest | dict) -> str:
    manifest = document_manifest(manifest)
    esc = _html.escape
    rows_html = "".join(
        f"<tr><td>{esc(r['name'])}</td><td>{esc(r['role'])}</td><td>{_f(r['auc'])}</td>"
        f"<td>{_spread(r)}</td><td>{_f(r['cost'])}</td>"
        f"<td>{_f(r.get('brier_before'))} → {_f(r.get('brier'))}</td></tr>"
        for r in rows(manifest)
    )
    ev = manifest.evaluation
    bands = "".join(
        f"<tr><td>{i + 1}</td><td>{_f(b.low)} – {_f(b.high)}</td><td>{b.n}</td><td>{_f(b.default_rate)}</td></tr>"
        for i, b in enumerate(ev.score_bands or [])
    )
    figs = "".join(f"<figure><figcaption>{esc(t)}</figcaption>{svg}</figure>" for t, svg in charts(manifest).items())
    n_sens = len(sensitive_lines(manifest))
    summary = "<br>".join(esc(x) for x in table(manifest)[-1 - n_sens :])
    m = manifest.metrics
    costs = manifest.costs
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model report {esc(manifest.model_id[:12])}</title>
<style>body{{font-family:sans-serif;margin:2rem;max-width:70rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:1rem}}</style></head><body>
<h1>Model report</h1>
<p>Model <code>{esc(manifest.model_id)}</code>, trained {esc(manifest.trained_at)} on
{_or(m.n_train, "?")} clients ({_or(m.positives, "?")} defaults). {esc(ev.procedure or "")}.
Costs: a missed defaulter {costs.get("fn")}, a refused good client {costs.get("fp")}.</p>
<p>{summary}</p>
<h2>Comparison (honest figures)</h2>
<table><tr><th>model</th><th>role</th><th>AUC (pooled out-of-fold)</th><th>AUC fold mean ± std</th>
<th>cost per client (cross-fitted threshold)</th><th>Brier before → after calibration</th></tr>{rows_html}</table>
<h2>Charts</h2>{figs}
<h2>Score bands</h2>
<table><tr><th>decile</th><th>probability</th><th>clients</th><th>observed default rate</th></tr>{bands}</table>
</body></html>
"""
