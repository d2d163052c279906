"""`credit fairness`: fairness of the live decisions over a window, as text, JSON or HTML.

The figures are app.monitoring.fairness.live_report's (each known client's latest decision in the window, its
outcome where observed, per group of each sensitive attribute, the four-fifths rule on approval rates); when a
challenger is installed beside the champion, the same table for its shadow decisions on the same clients
(challenger_report). `last` N: the window starts at the N-th most recent logged decision (within `until`).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from app.monitoring import fairness as fx


def start_of_last(store_path: Path, last: int, until: float | None) -> float | None:
    """The time of the `last`-th most recent logged decision before `until` (None: fewer rows than that)."""
    import apsw

    conn = apsw.Connection(str(store_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        hi = float("inf") if until is None else float(until)
        rows = conn.execute(
            "SELECT ts FROM prediction_log WHERE ts < ? ORDER BY ts DESC LIMIT 1 OFFSET ?", (hi, int(last) - 1)
        ).fetchall()
    finally:
        conn.close()
    return rows[0][0] if rows else None


def _challenger(model_dir: Path | None) -> tuple[str, float] | None:
    """(model id, threshold) of the challenger installed in a serving folder, or None."""
    if model_dir is None:
        return None
    from app.scoring.bundle import ModelError, read_manifest
    from app.scoring.layout import role_dir

    with contextlib.suppress(ModelError, OSError):
        folder = role_dir(model_dir, "challenger")
        if folder is not None:
            m = read_manifest(folder)[0]
            return m.model_id, float(m.threshold)
    return None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def report(
    store_path: Path,
    data_path: Path,
    *,
    model_dir: Path | None = None,
    attributes: tuple[str, ...] = fx.DEFAULT_ATTRIBUTES,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
    min_group: int = fx.MIN_GROUP,
) -> dict:
    """live_report over the window (+ the challenger's on the same clients); raises FairnessError when empty."""
    if not Path(store_path).is_file():
        raise fx.NoDecisions("no decisions logged yet (no operational store): score some clients first")
    if last is not None:
        start = start_of_last(Path(store_path), last, until)
        if start is not None:
            since = start if since is None else max(since, start)
    rep = fx.live_report(store_path, data_path, attributes=attributes, since=since, until=until, min_group=min_group)
    head = f"last {last:,} decisions" if last is not None else "decisions"
    rep["window"]["text"] = (
        f"{head} from {_iso(since) or 'the first'} until {_iso(until) or 'now'} "
        f"(latest per client: {rep['clients']:,} clients, {rep['outcomes']:,} with an outcome)"
    )
    chal = _challenger(model_dir)
    if chal is not None:
        try:
            rep["challenger"] = fx.challenger_report(
                store_path, data_path, challenger_id=chal[0], threshold=chal[1], attributes=attributes,
                since=since, until=until, min_group=min_group,
            )  # fmt: skip
        except fx.FairnessError as exc:
            rep["challenger"] = {"challenger_model_id": chal[0], "error": str(exc)}
    return rep


def _f(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _table(rep: dict) -> list[str]:
    lines = []
    for attr, t in rep["attributes"].items():
        lines.append(f"{attr}: best-treated group {t['best_group'] or '-'}, lowest approval ratio {_f(t['min_ratio'])}")
        lines.append(
            f"  {'group':<16} {'clients':>8} {'approval':>8} {'ratio':>6} {'outcomes':>8} {'def|acc':>7}"
            f" {'TPR':>6} {'FPR':>6}  flag"
        )
        for g in t["groups"]:
            flag = "FLAGGED" if g["flagged"] else ("too few" if g["too_few"] else "")
            lines.append(
                f"  {g['group'][:16]:<16} {g['clients']:>8} {_f(g['approval_rate']):>8} {_f(g['approval_ratio'], 2):>6}"
                f" {g['outcomes']:>8} {_f(g['default_rate_accepted']):>7} {_f(g['tpr']):>6} {_f(g['fpr']):>6}  {flag}"
            )
    return lines


def _flag_line(rep: dict) -> str:
    flagged = rep["flagged"]
    if not flagged:
        return f"no group below the four-fifths rule (approval ratio >= {rep['ratio_floor']})"
    return f"flagged (approval ratio < {rep['ratio_floor']}, four-fifths rule): " + "; ".join(
        f"{a}: {', '.join(gs)}" for a, gs in flagged.items()
    )


def text(rep: dict) -> str:
    lines = [f"window: {rep['window']['text']}", *_table(rep), _flag_line(rep)]
    c = rep.get("challenger")
    if c:
        lines.append("")
        if "error" in c:
            lines.append(f"challenger {c['challenger_model_id'][:12]}: {c['error']}")
        else:
            lines.append(f"challenger {c['challenger_model_id'][:12]} (threshold {c['challenger_threshold']:.4f}) "
                         "vs the champion on the same clients:")  # fmt: skip
            for who in ("champion", "challenger"):
                r = c[who]
                ratios = ", ".join(f"{a} {_f(t['min_ratio'], 2)}" for a, t in r["attributes"].items())
                lines.append(f"  {who:<10} lowest approval ratio: {ratios}; {_flag_line(r)}")
    lines.append(f"{rep['seconds']:.2f} s")
    return "\n".join(lines)


def html(rep: dict) -> str:
    """Self-contained HTML (tables only, no script, every value escaped)."""

    def table(r: dict) -> str:
        out = []
        for attr, t in r["attributes"].items():
            rows = "".join(
                "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in (
                    g["group"], g["clients"], _f(g["approval_rate"]), _f(g["approval_ratio"], 2), g["outcomes"],
                    _f(g["default_rate_accepted"]), _f(g["tpr"]), _f(g["fpr"]),
                    "FLAGGED" if g["flagged"] else ("too few" if g["too_few"] else ""),
                )) + "</tr>"
                for g in t["groups"]
            )  # fmt: skip
            out.append(
                f"<h3>{escape(attr)}</h3><table><tr><th>group</th><th>clients</th><th>approval rate</th>"
                "<th>ratio to best</th><th>outcomes</th><th>default rate (accepted)</th><th>TPR</th><th>FPR</th>"
                f"<th>flag</th></tr>{rows}</table>"
            )
        return "".join(out) + f"<p>{escape(_flag_line(r))}</p>"

    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Fairness of the live decisions</title><style>"
        "body{font-family:sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse;margin:.5rem 0}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}</style></head><body>",
        "<h1>Fairness of the live decisions</h1>",
        f"<p>Window: {escape(rep['window']['text'])}.</p>",
        table(rep),
    ]
    c = rep.get("challenger")
    if c and "error" not in c:
        parts.append(f"<h2>Challenger {escape(c['challenger_model_id'][:12])} on the same clients</h2>")
        parts += ["<h3>champion</h3>", table(c["champion"]), "<h3>challenger</h3>", table(c["challenger"])]
    elif c:
        parts.append(f"<p>Challenger {escape(c['challenger_model_id'][:12])}: {escape(c['error'])}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
