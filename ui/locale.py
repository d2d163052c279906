"""The dashboard's one locale layer: numbers, percentages, amounts, dates and plurals through Babel (CLDR).

French by default (fr_FR: "12,1 %", "14 661", "1 467 000 €", "7 déc. 2026 09:59"), English complete (en_GB
dates, "12.1%", "14,661", "€1,467,000"). Every number the pages, charts and tables show goes through here, so the
two languages never mix their conventions on one page.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

LOCALES = {"fr": "fr_FR", "en": "en_GB"}
DASH = "—"


@cache
def locale(lang: str) -> Locale:
    return Locale.parse(LOCALES.get(lang, "fr_FR"))


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def number(value: Any, lang: str, digits: int = 0) -> str:
    """A grouped number with at most `digits` decimals (trailing zeros dropped): 14661 -> '14 661' / '14,661'."""
    v = _finite(value)
    if v is None:
        return DASH
    pattern = "#,##0" + ("." + "#" * digits if digits > 0 else "")
    v = round(v, digits) or 0.0  # never '-0'
    return format_decimal(v, format=pattern, locale=locale(lang))


def parse_number(text: Any, lang: str) -> float | None:
    """What an officer typed, read in the page's language: '1 467 000', '0,832' (fr) or '1,467,000', '0.832' (en);
    a point is also read as the decimal mark in French; empty -> None; anything else raises ValueError."""
    if isinstance(text, (int, float)):
        return float(text)
    raw = "".join(str(text or "").split()).replace("\u202f", "").replace("\u00a0", "")
    if not raw:
        return None
    raw = raw.replace(",", ".") if lang != "en" else raw.replace(",", "")
    v = float(raw)  # ValueError on anything but a plain decimal number
    if not math.isfinite(v) or raw.lower().lstrip("+-").startswith(("inf", "nan")):
        raise ValueError(text)
    return v


def fixed(value: Any, lang: str, digits: int = 3) -> str:
    """A number with exactly `digits` decimals (AUC, PSI): 0.554 -> '0,554' / '0.554'."""
    v = _finite(value)
    if v is None:
        return DASH
    return format_decimal(v, format="#,##0." + "0" * digits, locale=locale(lang))


def percent(share: Any, lang: str, digits: int = 1) -> str:
    """A share as a percentage: 0.121 -> '12,1 %' / '12.1%'."""
    v = _finite(share)
    if v is None:
        return DASH
    own = locale(lang).percent_formats[None].pattern  # fr '#,##0\u00a0%', en '#,##0%'
    return format_percent(
        v, format=own.replace("#,##0", "#,##0." + "0" * digits if digits else "#,##0", 1), locale=locale(lang)
    )


def points(delta_share: Any, lang: str, digits: int = 1) -> str:
    """A difference of two shares in percentage points, signed, never a signed zero: 0.023 -> '+2,3 pt'; a change
    that rounds to zero gets up to two more decimals (0.0004 -> '+0,04 pt'), and below that '+< 0,001 pt'."""
    v = _finite(delta_share)
    if v is None:
        return DASH
    pts = 100 * v
    unit = "pt" if lang == "fr" else "pp"
    if pts == 0:
        return f"0 {unit}"
    sign = "+" if pts > 0 else "−"
    for shown in range(digits, digits + 3):
        if round(pts, shown) != 0:
            return f"{sign}{number(abs(pts), lang, shown)} {unit}"
    return f"{sign}< {number(10 ** -(digits + 2), lang, digits + 2)} {unit}"


def money(value: Any, lang: str, currency: str = "EUR") -> str:
    """An amount in euros, whole units, never in scientific notation: 1467000.0 -> '1 467 000 €' / '€1,467,000'."""
    v = _finite(value)
    if v is None:
        return DASH
    own = locale(lang).currency_formats["standard"].pattern.replace("#,##0.00", "#,##0")
    return format_currency(round(v), currency, format=own, currency_digits=False, locale=locale(lang))


def when(value: Any, lang: str, *, with_time: bool = True) -> str:
    """A moment (unix seconds, ISO 8601 text or datetime) in the reader's words, UTC: '7 déc. 2026, 09:59'."""
    moment = _moment(value)
    if moment is None:
        return DASH if value in (None, "") else str(value)
    if with_time:
        return format_datetime(moment, format="medium", locale=locale(lang), tzinfo=dt.UTC).rsplit(":", 1)[0]
    return format_date(moment.date(), format="medium", locale=locale(lang))


def month(value: Any, lang: str) -> str:
    """A month in words: '2026-12' (or any moment in it) -> 'décembre 2026' / 'December 2026'."""
    moment = _moment(f"{value}-01" if isinstance(value, str) and len(value) == 7 else value)
    if moment is None:
        return DASH if value in (None, "") else str(value)
    return format_date(moment.date(), format="LLLL y", locale=locale(lang))


def _moment(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def plural(n: int, lang: str, one: str, other: str) -> str:
    """`one` or `other` by the language's plural rule (CLDR: French 0 and 1 are singular, English only 1),
    with {n} formatted: plural(1, 'fr', '{n} période', '{n} périodes') -> '1 période'."""
    form = locale(lang).plural_form(abs(int(n)))
    return (one if form == "one" else other).format(n=number(n, lang))


def years_from_days(days: Any) -> float | None:
    """Home Credit counts time back from the application as negative days: -5712 -> 15.6 (years)."""
    v = _finite(days)
    return None if v is None else abs(v) / 365.25
