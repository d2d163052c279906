"""Pure functions behind the dashboard (no NiceGUI import): formatting, chart options, neighbours."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.scoring.bundle import Manifest, document_manifest
from app.service.schemas import DriftReport, MonitoringSummary, Population
from ui import categories, locale
from ui.i18n import feature_label, feature_value, t

# WCAG AA: each pair below has a contrast ratio >= 4.5:1 (checked in tests/test_ui.py).
COLORS = {
    "accept": ("#1b5e20", "#e8f5e9"),  # dark green text on pale green
    "refuse": ("#b71c1c", "#ffebee"),  # dark red text on pale red
    "text": ("#1f2937", "#ffffff"),
    "muted": ("#4b5563", "#ffffff"),
}
ICONS = {"accept": "check_circle", "refuse": "cancel"}
CHART_ACCEPT = "#2e7d32"
CHART_REFUSE = "#c62828"
CHART_NEUTRAL = "#1565c0"
CHART_NEAR = "#6a1b9a"


# --- formatting -------------------------------------------------------------------------------
def fmt_prob(p: float | None, lang: str = "fr") -> str:
    """A probability or share as a percentage in the page's language (ui/locale.py): '12,1 %' / '12.1%'."""
    return locale.percent(p, lang)


def fmt_value(v: Any, lang: str = "fr") -> str:
    if v is None:
        return t("missing", lang)
    if isinstance(v, bool):
        return t("yes" if v else "no", lang)
    if isinstance(v, (int, np.integer)):
        return locale.number(int(v), lang)
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return t("missing", lang)
        v = float(v)
        if v.is_integer() or abs(v) >= 100:
            return locale.number(v, lang)
        digits = max(0, 2 - math.floor(math.log10(abs(v)))) if v else 0  # three significant digits
        return locale.number(v, lang, digits)
    return str(v)


def is_client_id(text: str) -> bool:
    """Whether `text` is a client id the API accepts (app.service.http.parse_id's own rule)."""
    from app.service.http import ID_PATTERN
    from app.service.schemas import MAX_ID

    text = text.strip()
    return bool(ID_PATTERN.fullmatch(text)) and int(text) <= MAX_ID


def decision_key(decision: str | None) -> str:
    """'accept' or 'refuse' from the API's decision word (the API owns the rule; unknown words show as refuse)."""
    d = (decision or "").lower()
    if d.startswith(("acc", "grant", "approv")):
        return "accept"
    if d.startswith(("ref", "rej", "den")):
        return "refuse"
    return "refuse"


def decision_view(decision: str | None, lang: str) -> dict[str, str]:
    key = decision_key(decision)
    fg, bg = COLORS[key]
    return {"key": key, "text": t(key, lang), "icon": ICONS[key], "fg": fg, "bg": bg}


# --- contrast (WCAG 2.1) -----------------------------------------------------------------------
def _luminance(hex_color: str) -> float:
    h = hex_color.lstrip("#")
    rgb = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast_ratio(fg: str, bg: str) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


# --- score gauge -------------------------------------------------------------------------------
def gauge_option(probability: float, threshold: float, lang: str) -> dict:
    """ECharts gauge from 0 to 100 % with the threshold as the boundary between green and red."""
    thr = min(max(float(threshold), 0.0), 1.0)
    return {
        "aria": {"enabled": True},
        "series": [
            {
                "type": "gauge",
                "min": 0,
                "max": 100,
                "startAngle": 200,
                "endAngle": -20,
                "radius": "95%",
                "center": ["50%", "60%"],
                "axisLine": {"lineStyle": {"width": 18, "color": [[thr, CHART_ACCEPT], [1, CHART_REFUSE]]}},
                "pointer": {"width": 6, "itemStyle": {"color": "#111827"}},
                "axisTick": {"show": False},
                "splitLine": {"length": 8, "lineStyle": {"color": "#374151"}},
                "splitNumber": 5,
                # the locale's percent sign ('20 %' / '20%'); the needle's figure written by the locale layer
                "axisLabel": {
                    "color": "#1f2937",
                    "distance": 24,
                    "fontSize": 11,
                    "formatter": "{value}\u00a0%" if lang == "fr" else "{value}%",
                },
                "detail": {
                    "valueAnimation": False,
                    "formatter": fmt_prob(probability, lang),
                    "color": "#111827",
                    "fontSize": 22,
                    "offsetCenter": [0, "35%"],
                },
                "title": {"show": True, "offsetCenter": [0, "70%"], "color": "#1f2937", "fontSize": 13},
                "data": [
                    {
                        "value": round(100 * float(probability), 1),
                        "name": f"{t('threshold', lang)} {fmt_prob(thr, lang)}",
                    }
                ],
            }
        ],
    }


def gauge_caption(probability: float, threshold: float, decision: str | None, lang: str) -> str:
    key = decision_key(decision)
    side = t("above" if probability >= threshold else "below", lang)
    return t(
        "gauge_caption",
        lang,
        probability=fmt_prob(probability, lang),
        threshold=fmt_prob(threshold, lang),
        side=side,
        decision=t(key, lang).lower(),
    )


# --- SHAP waterfall ----------------------------------------------------------------------------
def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def waterfall_data(explanation: dict, lang: str, top: int = 10) -> dict:
    """Steps of a waterfall in log-odds: base value, top contributions, the rest, the final margin.

    Returns {"steps": [{"label", "start", "end", "shap", "kind"}], "base", "margin", "probability"}.
    kind is 'base' | 'up' | 'down' | 'final'. 'up' increases the risk of default.
    """
    base = float(explanation.get("base_value", 0.0))
    every = sorted(explanation.get("contributions") or [], key=lambda c: -abs(float(c.get("shap", 0.0))))
    contributions = every[:top]
    shap_sum = sum(float(c.get("shap", 0.0)) for c in every)
    margin = float(explanation.get("margin", base + shap_sum))
    probability = explanation.get("probability")
    probability = _sigmoid(margin) if probability is None else float(probability)
    steps = [{"label": t("base_value", lang), "start": 0.0, "end": base, "shap": base, "kind": "base"}]
    running = base
    for c in contributions:
        s = float(c.get("shap", 0.0))
        name = str(c.get("feature", "?"))
        label = c.get("label") or feature_label(name, lang)
        shown = feature_value(name, c.get("value"), lang) or fmt_value(c.get("value"), lang)
        label = f"{label} = {shown}"
        steps.append(
            {"label": label, "start": running, "end": running + s, "shap": s, "kind": "up" if s > 0 else "down"}
        )
        running += s
    rest = margin - running
    if abs(rest) > 1e-9:
        steps.append(
            {
                "label": t("others", lang),
                "start": running,
                "end": margin,
                "shap": rest,
                "kind": "up" if rest > 0 else "down",
            }
        )
    steps.append({"label": t("final", lang), "start": 0.0, "end": margin, "shap": margin, "kind": "final"})
    return {"steps": steps, "base": base, "margin": margin, "probability": probability}


def waterfall_option(data: dict, lang: str = "fr") -> dict:
    """Horizontal ECharts waterfall: an invisible 'offset' series plus a visible 'delta' series."""
    steps = data["steps"]
    labels = [s["label"] for s in steps]
    offsets, deltas = [], []
    color = {"up": CHART_REFUSE, "down": CHART_ACCEPT, "base": "#546e7a", "final": CHART_NEUTRAL}
    for s in steps:
        lo, hi = sorted((s["start"], s["end"]))
        if s["kind"] in ("base", "final"):
            lo, hi = min(0.0, s["end"]), max(0.0, s["end"])
        offsets.append(round(lo, 4))
        deltas.append(
            {
                "value": round(hi - lo, 4),
                "itemStyle": {"color": color[s["kind"]]},
                "label": {
                    "show": True,
                    "position": "right",
                    "color": "#111827",
                    "formatter": _signed(s["shap"], lang)
                    if s["kind"] in ("up", "down")
                    else locale.fixed(s["shap"], lang),
                },
            }
        )
    return responsive(
        {
            "aria": {"enabled": True},
            "grid": {"left": 8, "right": 56, "top": 8, "bottom": 24, "containLabel": True},
            "xAxis": {
                "type": "value",
                "name": t("waterfall_axis", lang),
                "nameLocation": "middle",
                "nameGap": 22,
                "scale": True,
                "axisLabel": {":formatter": js_number_formatter(lang)},
            },
            "yAxis": {
                "type": "category",
                "inverse": True,
                "data": labels,
                # two lines at most per label, each row tall enough for them (the page sizes the chart by rows)
                "axisLabel": {"color": "#1f2937", "width": 260, "overflow": "break", "lineHeight": 13},
            },
            "series": [
                # stackStrategy 'all' stacks negative offsets too, so each visible bar spans [start, end]
                {
                    "type": "bar",
                    "stack": "w",
                    "stackStrategy": "all",
                    "silent": True,
                    "itemStyle": {"color": "transparent"},
                    "data": offsets,
                },
                {"type": "bar", "stack": "w", "stackStrategy": "all", "data": deltas, "barMaxWidth": 26},
            ],
        }
    )


def responsive(option: dict, narrow: int = 520, label_width: int = 110) -> dict:
    """Wrap an option with an ECharts media query: narrower category labels when the chart is narrow."""
    return {
        "baseOption": option,
        "media": [
            {
                "query": {"maxWidth": narrow},
                "option": {
                    "yAxis": {"axisLabel": {"width": label_width, "fontSize": 10, "lineHeight": 11}},
                    "grid": {"right": 44},
                },
            }
        ],
    }


def _signed(v: float, lang: str) -> str:
    """A contribution with its sign, in the locale's decimals: '+0,120', '−0,234'."""
    return ("+" if v >= 0 else "\u2212") + locale.fixed(abs(v), lang)


def js_number_formatter(lang: str) -> str:
    """An ECharts axis-label formatter (JavaScript, NiceGUI's ':' option keys) writing numbers the locale's way."""
    tag = "fr-FR" if lang == "fr" else "en-GB"
    return f"v => v.toLocaleString('{tag}', {{maximumFractionDigits: 3}})"


def bar_rows_height(rows: int) -> int:
    """A horizontal bar chart's height in pixels: room on every row for a label broken on up to three lines (four
    on a phone, where the labels are narrower and smaller)."""
    return max(384, 46 * rows + 60)


def waterfall_rows_height(data: dict) -> int:
    return bar_rows_height(len(data["steps"]))


def localize_axes(option: dict, lang: str) -> dict:
    """Every value axis of an ECharts option (and of its responsive base) writes its numbers the locale's way,
    unless it has a formatter of its own."""
    base = option.get("baseOption", option)
    for key in ("xAxis", "yAxis"):
        axes = base.get(key)
        for axis in axes if isinstance(axes, list) else [axes] if isinstance(axes, dict) else []:
            if axis.get("type", "value") == "value":
                label = axis.setdefault("axisLabel", {})
                if "formatter" not in label and ":formatter" not in label:
                    label[":formatter"] = js_number_formatter(lang)
    return option


def waterfall_caption(data: dict, lang: str) -> str:
    steps = [s for s in data["steps"] if s["kind"] in ("up", "down")]
    return t(
        "explain_caption",
        lang,
        base=locale.fixed(data["base"], lang),
        n=len(steps),
        up=sum(s["kind"] == "up" for s in steps),
        down=sum(s["kind"] == "down" for s in steps),
        probability=fmt_prob(data["probability"], lang),
    )


# --- population & neighbours -------------------------------------------------------------------
def population_table(population: Population, features: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(client ids, values float64 [n, len(features)] with NaN, decision keys) from GET /population, whose rows
    hold `values` aligned with its `features` (app.service.schemas.Population)."""
    column = {name: j for j, name in enumerate(population.features)}
    X = np.full((len(population.rows), len(features)), np.nan)
    for j, name in enumerate(features):
        if name in column:
            k = column[name]
            X[:, j] = [math.nan if r.values[k] is None else r.values[k] for r in population.rows]
    ids = np.fromiter((r.client_id for r in population.rows), dtype=np.int64, count=len(population.rows))
    return ids, X, [decision_key(r.decision) for r in population.rows]


def _num(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations ignoring NaN (std 1 where constant or empty)."""
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(X), X, np.nan)
        counts = np.sum(np.isfinite(finite), axis=0)
        mean = np.where(counts > 0, np.nansum(finite, axis=0) / np.maximum(counts, 1), 0.0)
        var = np.where(counts > 0, np.nansum((finite - mean) ** 2, axis=0) / np.maximum(counts, 1), 1.0)
    std = np.sqrt(var)
    std = np.where((std > 0) & np.isfinite(std), std, 1.0)
    return mean, std


def nearest_neighbours(X: np.ndarray, x: np.ndarray, k: int = 15, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k rows of X nearest to x in Euclidean distance on standardised columns.

    Missing values (NaN) are imputed with the column mean, i.e. 0 after scaling, so they add no distance.
    Rows where `exclude` is True (e.g. the client itself) are never returned. Ties keep row order.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    mean, std = standardise(X)
    Z = np.nan_to_num((X - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
    z = np.nan_to_num((x - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
    d = np.sum((Z - z) ** 2, axis=1)
    if exclude is not None:
        d = np.where(np.asarray(exclude, dtype=bool), np.inf, d)
    order = np.argsort(d, kind="stable")
    order = order[np.isfinite(d[order])]
    return order[:k].astype(np.int64)


def histogram_edges(values: np.ndarray, client_value: float | None = None, bins: int = 20) -> np.ndarray:
    v = values[np.isfinite(values)]
    if client_value is not None and math.isfinite(client_value):
        v = np.append(v, client_value)
    if v.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(np.min(v)), float(np.max(v))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def counts(values: np.ndarray, edges: np.ndarray) -> list[int]:
    v = values[np.isfinite(values)]
    return [int(c) for c in np.histogram(v, bins=edges)[0]]


def _median(v: np.ndarray) -> float | None:
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else None


def comparison(
    feature: str, col: np.ndarray, decisions: list[str], near: np.ndarray, value: float | None, lang: str
) -> dict:
    """Histogram option (all = accepted + refused stacked; similar clients as a line) and caption."""
    dec = np.asarray(decisions)
    acc, ref = col[dec == "accept"], col[dec == "refuse"]
    nvals = col[near] if near.size else np.zeros(0)
    edges = histogram_edges(col, value)
    centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]
    cats = [fmt_value(round(c, 3), lang) for c in centres]
    label = feature_label(feature, lang)
    option: dict = {
        "aria": {"enabled": True},
        "legend": {"top": 0, "textStyle": {"color": "#1f2937"}},
        # room for a legend on two lines (a phone) and the client's value label above the plot
        "grid": {"left": 8, "right": 8, "top": 76, "bottom": 8, "containLabel": True},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": cats, "axisLabel": {"color": "#1f2937"}},
        "yAxis": [{"type": "value", "axisLabel": {"color": "#1f2937"}}, {"type": "value", "show": False}],
        "series": [
            {
                "name": t("accepted_clients", lang),
                "type": "bar",
                "stack": "all",
                "data": counts(acc, edges),
                "itemStyle": {"color": CHART_ACCEPT},
            },
            {
                "name": t("refused_clients", lang),
                "type": "bar",
                "stack": "all",
                "data": counts(ref, edges),
                "itemStyle": {"color": CHART_REFUSE},
            },
            {
                "name": t("similar_clients", lang),
                "type": "line",
                "yAxisIndex": 1,
                "data": counts(nvals, edges),
                "itemStyle": {"color": CHART_NEAR},
                "lineStyle": {"width": 2, "type": "dashed"},
                "symbol": "diamond",
            },
        ],
    }
    percentile = None
    if value is not None and math.isfinite(value):
        finite = col[np.isfinite(col)]
        percentile = round(100 * float(np.mean(finite <= value))) if finite.size else None
        idx = int(np.clip(np.searchsorted(edges, value, side="right") - 1, 0, len(cats) - 1))
        option["series"][0]["markLine"] = {
            "symbol": "none",
            "lineStyle": {"color": "#111827", "width": 3},
            "label": {"formatter": f"{t('client_value', lang)} {fmt_value(value, lang)}", "color": "#111827"},
            "data": [{"xAxis": idx}],
        }
    caption = t(
        "compare_caption",
        lang,
        feature=label,
        value=fmt_value(value, lang),
        percentile="—" if percentile is None else percentile,
        n=locale.number(int(np.isfinite(col).sum()), lang),
        acc=fmt_value(_median(acc), lang),
        ref=fmt_value(_median(ref), lang),
        k=int(near.size),
        near=fmt_value(_median(nvals), lang),
    )
    return {"option": option, "caption": caption}


# --- model page --------------------------------------------------------------------------------
def top_features(model: Manifest | dict, n: int = 3) -> list[str]:
    model = document_manifest(model)
    names = [str(name) for name, _v in model.global_importance if name]
    return names[:n] if names else list(model.features)[:n]


def importance_option(model: Manifest | dict, lang: str, n: int = 15) -> dict:
    rows = [(name, float(v)) for name, v in document_manifest(model).global_importance][:n]
    return responsive(
        {
            "aria": {"enabled": True},
            "grid": {"left": 8, "right": 40, "top": 8, "bottom": 8, "containLabel": True},
            "xAxis": {"type": "value"},
            "yAxis": {
                "type": "category",
                "inverse": True,
                "data": [feature_label(f, lang) for f, _ in rows],
                "axisLabel": {"color": "#1f2937", "width": 260, "overflow": "break"},
            },
            "tooltip": {"trigger": "axis"},
            "series": [{"type": "bar", "data": [round(v, 4) for _, v in rows], "itemStyle": {"color": CHART_NEUTRAL}}],
        }
    )


def flatten_metrics(metrics: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(metrics, dict):
        for k, v in metrics.items():
            out.extend(flatten_metrics(v, f"{prefix}{k}."))
    elif isinstance(metrics, list):
        if all(isinstance(v, (int, float)) for v in metrics) and len(metrics) <= 10:
            out.append((prefix.rstrip("."), ", ".join(f"{v:.4g}" for v in metrics)))
    elif isinstance(metrics, float):
        out.append((prefix.rstrip("."), f"{metrics:.4f}"))
    elif metrics is not None:
        out.append((prefix.rstrip("."), str(metrics)))
    return out


def headline_metrics(metrics: dict) -> list[tuple[str, str]]:
    """The few top-level metrics worth a tile: AUCs and business costs (numbers only)."""
    out = []
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and ("auc" in k.lower() or "cost" in k.lower()):
            out.append((k, f"{v:.4f}"))
    return out[:6]


# --- what-if -----------------------------------------------------------------------------------
def whatif_features(base: dict[str, float | None], edits: dict[str, float | None]) -> dict[str, float | None]:
    """The full feature mapping to POST /score: the client's features with the edited ones replaced."""
    out = dict(base)
    for k, v in edits.items():
        if k in out:
            out[k] = None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)
    return out


def column_value(edited: float | None, original: object) -> float | int | None:
    """A what-if input as the application column expects it: integers stay integers (CNT_CHILDREN, DAYS_*)."""
    if edited is None or (isinstance(edited, float) and not math.isfinite(edited)):
        return None
    if isinstance(original, int) and not isinstance(original, bool) and float(edited).is_integer():
        return int(edited)
    return float(edited)


DAYS_PER_YEAR = 365.25


def whatif_shown(name: str, value: object) -> float | None:
    """A what-if column in the unit the client panel uses: DAYS_* (negative days before the application) in years,
    the rest as stored (euros, scores, counts)."""
    v = _num(value)
    if math.isnan(v):
        return None
    if name.startswith("DAYS_"):
        return None if v > 0 else round(-v / DAYS_PER_YEAR, 1)  # 365243: Home Credit's "not employed" marker
    return round(v, 6)


def whatif_raw(name: str, shown: float | None, original: object) -> float | int | None:
    """The application column's value for a what-if input in the panel's unit (years -> negative whole days)."""
    if shown is None or not math.isfinite(shown):
        return None
    if name.startswith("DAYS_"):
        return -round(abs(shown) * DAYS_PER_YEAR)
    return column_value(shown, original)


def whatif_digits(name: str) -> int:
    """Decimals shown in a what-if input (through the locale layer, never scientific notation): whole euros and
    counts, tenths of a year, three for the external scores."""
    if name.startswith(("AMT_", "CNT_")):
        return 0
    if name.startswith("DAYS_"):
        return 1
    return 3 if name.startswith("EXT_SOURCE") else 6


def slider_range(value: float | None, col: np.ndarray | None = None) -> tuple[float, float, float]:
    """(min, max, step) for a what-if slider: the population's 1-99 % range widened to include value."""
    lo = hi = None
    if col is not None:
        finite = col[np.isfinite(col)]
        if finite.size:
            lo, hi = float(np.percentile(finite, 1)), float(np.percentile(finite, 99))
    if value is not None and math.isfinite(value):
        lo = value if lo is None else min(lo, value)
        hi = value if hi is None else max(hi, value)
    if lo is None or hi is None:
        return 0.0, 1.0, 0.01
    if lo == hi:
        lo, hi = lo - max(1.0, abs(lo)), hi + max(1.0, abs(hi))
    step = 10 ** math.floor(math.log10((hi - lo) / 100)) if hi > lo else 0.01
    return lo, hi, step


# --- monitoring --------------------------------------------------------------------------------
def summary_kpis(summary: MonitoringSummary) -> dict[str, float | None]:
    return {"count": summary.requests, "p50": summary.latency_ms.p50, "p99": summary.latency_ms.p99}


def score_series(summary: MonitoringSummary, lang: str = "fr") -> dict:
    """{"periods": [label], "counts": [n], "means": [p|None], "bins": [label], "hist": [[n per bin] per period]}
    from GET /monitoring/summary: one score histogram per hour over `bin_edges`."""
    edges = list(summary.bin_edges)
    periods = [locale.when(h.hour_ts, lang) for h in summary.score_histogram]
    cnts = [h.count for h in summary.score_histogram]
    hist = [list(h.counts) for h in summary.score_histogram]
    means: list[float | None] = [None] * len(hist)
    n_bins = max((len(h) for h in hist if h), default=0)
    if n_bins:
        if isinstance(edges, list) and len(edges) == n_bins + 1:
            bins = [f"{100 * float(edges[i]):.0f}-{100 * float(edges[i + 1]):.0f} %" for i in range(n_bins)]
        else:
            bins = [f"{100 * i / n_bins:.0f}-{100 * (i + 1) / n_bins:.0f} %" for i in range(n_bins)]
        hist = [h if h else [0] * n_bins for h in hist]
        if all(m is None for m in means):  # mean probability from the histogram's bin centres
            e = [float(x) for x in edges] if isinstance(edges, list) and len(edges) == n_bins + 1 else None
            e = e or [i / n_bins for i in range(n_bins + 1)]
            centres = [(e[i] + e[i + 1]) / 2 for i in range(n_bins)]
            means = [(sum(c * m for c, m in zip(h, centres, strict=True)) / sum(h)) if sum(h) else None for h in hist]
    else:
        bins, hist = [], []
    return {"periods": periods, "counts": cnts, "means": means, "bins": bins, "hist": hist}


def score_time_option(series: dict, lang: str) -> dict:
    n_bins = len(series["bins"])
    palette = [
        "#1b5e20",
        "#2e7d32",
        "#558b2f",
        "#9e9d24",
        "#f9a825",
        "#ef6c00",
        "#d84315",
        "#c62828",
        "#b71c1c",
        "#7f0000",
    ]
    out: list[dict] = []
    if n_bins:
        for b, name in enumerate(series["bins"]):
            color = palette[min(len(palette) - 1, int(b * len(palette) / n_bins))]
            out.append(
                {
                    "name": name,
                    "type": "bar",
                    "stack": "h",
                    "data": [h[b] for h in series["hist"]],
                    "itemStyle": {"color": color},
                }
            )
    else:
        out.append(
            {
                "name": t("requests", lang),
                "type": "bar",
                "data": series["counts"],
                "itemStyle": {"color": CHART_NEUTRAL},
            }
        )
    if any(m is not None for m in series["means"]):
        out.append(
            {
                "name": t("mean_probability", lang),
                "type": "line",
                "yAxisIndex": 1,
                "data": [None if m is None else round(100 * m, 2) for m in series["means"]],
                "itemStyle": {"color": "#111827"},
            }
        )
    return {
        "aria": {"enabled": True},
        "legend": {"type": "scroll", "top": 0},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 8, "right": 8, "top": 40, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": series["periods"]},
        "yAxis": [{"type": "value", "name": t("count", lang)}, {"type": "value", "name": "%", "min": 0, "max": 100}],
        "series": out,
    }


PERIODS = {"fr": ("{n} période", "{n} périodes"), "en": ("{n} period", "{n} periods")}


def score_time_caption(series: dict, lang: str) -> str:
    means = [m for m in series["means"] if m is not None]
    return t(
        "score_caption",
        lang,
        n=locale.plural(len(series["periods"]), lang, *PERIODS[lang]),
        first=fmt_prob(means[0], lang) if means else "—",
        last=fmt_prob(means[-1], lang) if means else "—",
    )


def drift_rows(drift: DriftReport) -> list[dict]:
    """[{"feature", "psi", "drifted"}] from GET /monitoring/drift (app.service.schemas.DriftReport)."""
    return [{"feature": f.feature, "psi": f.psi, "drifted": f.drifted} for f in drift.features]


# ---- client information and worklist ------------------------------------------------------------------------------

# the columns of the `clients` table an officer reads, in this order (internal ones such as `split` are left out)
CLIENT_FIELDS = (
    "gender",
    "age_years",
    "family_status",
    "children",
    "education",
    "income_type",
    "occupation",
    "organization",
    "years_employed",
    "income",
    "contract_type",
    "credit",
    "annuity",
    "goods_price",
    "housing_type",
    "own_car",
    "own_realty",
    "ext_source_1",
    "ext_source_2",
    "ext_source_3",
)


CATEGORY_FIELDS = {"family_status", "education", "income_type", "occupation", "organization", "contract_type"}
CATEGORY_FIELDS |= {"housing_type"}


def client_rows(fields: dict, lang: str) -> list[dict[str, str]]:
    """Rows {"key", "field", "value"} of the client information table, labelled in `lang`."""
    rows = []
    for key in CLIENT_FIELDS:
        if key not in fields:
            continue
        v = fields[key]
        if key == "gender" and v in ("F", "M"):
            text = t("female" if v == "F" else "male", lang)
        elif key in ("own_car", "own_realty") and v in ("Y", "N"):
            text = t("yes" if v == "Y" else "no", lang)
        elif key in ("age_years", "years_employed") and isinstance(v, (int, float)) and math.isfinite(v):
            text = fmt_value(round(float(v)), lang)
        elif key.startswith("ext_source") and isinstance(v, (int, float)) and math.isfinite(v):
            text = locale.fixed(v, lang, 2)
        elif isinstance(v, (int, float)) and key in ("income", "credit", "annuity", "goods_price"):
            text = locale.money(v, lang) if math.isfinite(float(v)) else t("missing", lang)
        elif isinstance(v, str) and key in CATEGORY_FIELDS:
            text = categories.category(v, lang)
        else:
            text = fmt_value(v, lang)
        rows.append({"key": key, "field": t(f"cf_{key}", lang), "value": text})
    return rows


def band_label(lower: float, upper: float, lang: str = "fr") -> str:
    """'30–40 %' / '30–40%': a probability band in the page's language."""
    return f"{locale.number(100 * lower, lang)}–{locale.percent(upper, lang, 0)}"


def bands_option(bands: list[dict], threshold: float, lang: str) -> dict:
    """Bar chart of clients per probability band, refused share stacked on accepted."""
    labels = [band_label(b["lower"], b["upper"], lang) for b in bands]
    accepted = [b["clients"] - b["refused"] for b in bands]
    refused = [b["refused"] for b in bands]
    acc_fg, _ = COLORS["accept"]
    ref_fg, _ = COLORS["refuse"]
    return {
        "tooltip": {"trigger": "axis"},
        # the legend above the plot, the axis name below the labels: nothing overlaps at any width
        "legend": {"top": 0, "data": [t("accept", lang), t("refuse", lang)]},
        "grid": {"left": 8, "right": 16, "top": 40, "bottom": 36, "containLabel": True},
        "xAxis": {"type": "category", "data": labels, "name": t("probability", lang), "nameLocation": "middle",
                  "nameGap": 40, "axisLabel": {"hideOverlap": True}},
        "yAxis": {"type": "value", "name": t("worklist_clients", lang)},
        "series": [
            {"name": t("accept", lang), "type": "bar", "stack": "n", "data": accepted, "itemStyle": {"color": acc_fg}},
            {"name": t("refuse", lang), "type": "bar", "stack": "n", "data": refused, "itemStyle": {"color": ref_fg}},
        ],
    }  # fmt: skip


def bands_caption(bands: list[dict], lang: str) -> str:
    if not bands:
        return t("no_data", lang)
    top = max(bands, key=lambda b: b["clients"])
    return t(
        "worklist_bands_caption",
        lang,
        n=len(bands),
        band=band_label(top["lower"], top["upper"], lang),
        clients=fmt_value(int(top["clients"]), lang),
    )
