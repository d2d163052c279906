"""Self-contained HTML for the realised-performance report (`credit performance --html FILE`): tables only,
no script, every value escaped."""

from __future__ import annotations

from html import escape


def _num(v, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return escape(str(v))


def _figures(title: str, f: dict) -> str:
    if f.get("too_few_outcomes"):
        return f"<h3>{escape(title)}</h3><p class=few>Too few outcomes: {escape(f.get('reason', ''))}</p>"
    rows = "".join(
        f"<tr><td>{b['band'][0]:.2f}–{b['band'][1]:.2f}</td><td>{b['n']}</td><td>{_num(b['mean_predicted'])}</td>"
        f"<td>{'too few' if b['too_few_outcomes'] else _num(b['observed_default_rate'])}</td></tr>"
        for b in f.get("calibration", [])
    )
    c = f.get("confusion", {})
    return (
        f"<h3>{escape(title)}</h3>"
        f"<p>outcomes {f['outcomes']}, defaults {f['defaults']}, realised AUC <b>{_num(f['auc'])}</b>, "
        f"cost per client <b>{_num(f['cost_per_client'])}</b> (accept all: {_num(f['accept_all_cost_per_client'])}),"
        f" approval rate {_num(f['approval_rate'], 3)}; accepted defaulters {c.get('fn')}, refused good clients "
        f"{c.get('fp')}</p>"
        "<table><tr><th>score band</th><th>n</th><th>mean predicted PD</th><th>observed default rate</th></tr>"
        f"{rows}</table>"
    )


def render(report: dict) -> str:
    w = report["window"]
    last = "" if w.get("last") is None else f", last {w['last']} predictions"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Realised performance</title><style>"
        "body{font-family:sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse;margin:.5rem 0}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}.few{color:#92400e}</style></head><body>",
        "<h1>Realised performance</h1>",
        f"<p>Window {escape(str(w.get('since')))} .. {escape(str(w.get('until')))}"
        f"{last}. Outcomes stored "
        f"{report['outcomes_total']}, joined with the decision served {report['matched']}, never scored "
        f"{report['never_scored']['count']}, decision outside the window {report['outside_window']}. Costs: "
        f"accepted defaulter {report['costs']['fn']}, refused good client {report['costs']['fp']}.</p>",
        _figures("All models", report["overall"]),
    ]
    for m in report["models"]:
        parts.append(f"<h2>Model {escape(m['model_id'][:12])}</h2>")
        parts.append(_figures("whole window", m))
        for p in m["periods"]:
            parts.append(_figures(f"{report['period']} {p['period']}", p))
    parts.append("</body></html>")
    return "\n".join(parts)
