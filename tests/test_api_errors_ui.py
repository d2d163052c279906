"""The API's errors in the officer's words (ui/api_errors.py): every error text the API's code can raise on the
dashboard's paths has a French and an English sentence; an unknown one gets a visible fallback naming only its HTTP
status; and the real API's answers (in process, over a copy of the test pipeline) read right through the dashboard's
own client, never with the API's English in the French sentence."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import re
from pathlib import Path

import httpx
import pytest
from apiserver import copy_pipeline
from hypothesis import given
from hypothesis import strategies as st

from app.config import Settings
from ui import api_errors, locale
from ui.api_client import ApiClient, ApiError
from ui.i18n import feature_label

ROOT = Path(__file__).resolve().parent.parent
# the API code whose errors the dashboard can meet: the routes it calls and what they call
SCANNED = [
    "app/service/http.py",
    "app/service/state.py",
    "app/service/inputs.py",
    "app/service/readiness.py",
    "app/service/portfolio.py",
    "app/service/httpguard.py",
    "app/service/routes/clients.py",
    "app/service/routes/model.py",
    "app/service/routes/population.py",
    "app/service/routes/monitoring.py",
    "app/service/routes/drift_report.py",
    "app/service/routes/outcomes.py",
    "app/data/whatif.py",
    "app/rights/records.py",  # the letter route's (ui/pages/letter.py)
]
# errors of paths the dashboard never takes (it imports no outcomes; the letter page is the rights API's)
NOT_ON_THE_DASHBOARDS_PATHS = {"give 1 to x outcomes", "invalid outcomes", "cannot print the letter"} | {
    # reviews and overrides are recorded through the API and the command line, not from the dashboard
    "recording a review request needs the officer role",
    "no review x",
    "deciding a review needs the risk role",
    "reason must be one of x",
    "an override needs the officer role",
    "approving an override needs the risk role (four eyes)",
    "decision x has no override",
    "four eyes: the second person must not be the officer who made the override",
}
ENGLISH = re.compile(
    r"unknown client|written with digits|must be|out of range|unavailable|not found|invalid|request|API key|"
    r"endpoint|role|\bnull\b|client_id"
)


def _sample(node: ast.expr, named: dict[str, ast.expr]) -> str | None:
    """A text the expression can evaluate to: a literal, or an f-string with each placeholder as 'x'."""
    if isinstance(node, ast.Name) and node.id in named:
        return _sample(named[node.id], {})
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
    return None


@functools.cache
def raised_errors() -> list[tuple[str, int | None, str]]:
    """(file, status, error text) of every ApiError(status, text)/error_response(status, text)/_Reject(...) and
    WhatIfError(text) / RightsError(text, status) in SCANNED whose text is written in the code (a `str(exc)` is
    checked at its source)."""
    found = []
    for rel in SCANNED:
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        named = {  # `message = f"..."; raise ApiError(400, message)`
            t.id: n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("ApiError", "error_response", "_Reject") and len(node.args) >= 2:
                status = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
                text = _sample(node.args[1], named)
            elif name == "RightsError" and len(node.args) >= 2:  # RightsError(text, status, detail)
                status = node.args[1].value if isinstance(node.args[1], ast.Constant) else None
                text = _sample(node.args[0], named)
            elif name == "WhatIfError" and node.args:
                status, text = 400, _sample(node.args[0], named)
            else:
                continue
            if text is not None and status is not None and text not in NOT_ON_THE_DASHBOARDS_PATHS:
                found.append((rel, status, text))
    return found


def test_every_error_the_api_code_raises_on_the_dashboards_paths_is_translated():
    errors = raised_errors()
    assert len(errors) > 40  # the scan finds the API's errors (it would pass vacuously otherwise)
    missing = [(f, status, text) for f, status, text in errors if api_errors.find(status, text) is None]
    assert not missing, f"API errors without a sentence in ui/api_errors.py: {missing}"
    # the API's generic texts for its status codes too (Litestar's own 404/405/413 answers)
    for status, text in ((404, "not found"), (413, "request entity too large"), (500, "internal server error")):
        assert api_errors.find(status, text) is not None


def test_the_catalogue_has_one_entry_per_code_and_sentences_in_both_languages():
    codes = [k.code for k in api_errors.CATALOGUE]
    assert len(codes) == len(set(codes))
    for known in api_errors.CATALOGUE:
        detail = {"client_id": 7, "rows": 3, "min_rows": 200}
        fr = api_errors.sentence(known.statuses[0], _example(known), detail, "fr")
        en = api_errors.sentence(known.statuses[0], _example(known), detail, "en")
        assert fr and en and fr != en, known.code
        assert not ENGLISH.search(fr), (known.code, fr)
        assert "{" not in fr + en, (known.code, fr, en)


def _example(known: api_errors.Known) -> str:
    """An error text of the entry's shape: one the API's code raises, else the status's generic text."""
    for _f, status, text in raised_errors():
        if status in known.statuses and known.pattern.fullmatch(text):
            return text
    text = {"route_not_found": "not found", "too_large": "request entity too large"}.get(known.code, "x")
    assert known.pattern.fullmatch(text), (known.code, text)
    return text


def test_sentences_quote_the_detail_in_the_readers_format():
    fr = api_errors.sentence(404, "unknown client", {"client_id": 1234567}, "fr")
    en = api_errors.sentence(404, "unknown client", {"client_id": 1234567}, "en")
    assert locale.number(1234567, "fr") in fr and "1,234,567" in en
    text = api_errors.sentence(400, "AMT_INCOME_TOTAL must be a finite number or null", {"column": "x"}, "fr")
    assert feature_label("AMT_INCOME_TOTAL", "fr") in text and "AMT_INCOME_TOTAL" not in text
    role = api_errors.sentence(403, "this endpoint needs the admin role", None, "fr")
    assert "administrateur" in role and "admin role" not in role


@given(status=st.integers(400, 599), text=st.text(max_size=80))
def test_an_unknown_error_falls_back_visibly_without_its_english(status, text):
    """Whatever the API says, the French page shows a French sentence: a translation, or the fallback that names
    the HTTP status; the API's own text is never part of it."""
    sentence = api_errors.sentence(status, text, {"anything": text}, "fr")
    assert sentence
    if api_errors.find(status, text) is None:
        template = api_errors.FALLBACK_5XX if status >= 500 else api_errors.FALLBACK
        assert sentence == template["fr"].format(status=status) and f"code HTTP {status}" in sentence


def test_a_non_json_error_and_a_foreign_shape_get_the_fallback():
    async def scenario():
        api = ApiClient("http://api", "k", transport=httpx.MockTransport(lambda r: httpx.Response(502, text="Bad")))
        try:
            await api.model()
        finally:
            await api.aclose()

    with pytest.raises(ApiError) as err:
        asyncio.run(scenario())
    assert err.value.code == "api" and "502" in err.value.message("fr") and "Bad" not in err.value.message("fr")


# ---- the real API, in process ----------------------------------------------------------------------------------

OFFICER_KEY, ADMIN_KEY = "officer-key", "admin-key"


@pytest.fixture(scope="module")
def real_api(pipeline, tmp_path_factory):
    data = copy_pipeline(pipeline, tmp_path_factory.mktemp("api-errors-ui"))
    from app.service.api import create_app

    keys = f"{OFFICER_KEY}:officer,{ADMIN_KEY}:admin"
    return create_app(Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=keys, keys_file=""))


def test_the_real_apis_errors_read_in_french_and_english(real_api):
    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(real_api.lifespan())
            transport = httpx.ASGITransport(app=real_api)
            officer = ApiClient("http://api", OFFICER_KEY, transport=transport)
            stranger = ApiClient("http://api", "not-a-key", transport=transport)
            stack.push_async_callback(officer.aclose)
            stack.push_async_callback(stranger.aclose)
            cid = (await officer.suggest("1", limit=1))[0]
            features = list((await officer.model()).features)
            assert len(features) > 20
            calls = {
                "unknown_client": officer.score(999),
                "bad_client_id": officer.request("GET", "/clients/012/score"),
                "whatif_number": officer.what_if(cid, {"AMT_INCOME_TOTAL": "beaucoup"}),
                "whatif_range": officer.what_if(cid, {"AMT_CREDIT": 1e300}),
                "whatif_columns": officer.what_if(cid, {"NOT_A_COLUMN": 1}),
                "unknown_features": officer.population(["NOT_A_FEATURE"]),
                "too_many_features": officer.population(features[:21]),
                "unauthorized": stranger.model(),
                "forbidden_role": officer.monitoring_summary(),
                "route_not_found": officer.request("GET", "/no-such-page"),
            }
            out = {}
            for expected, call in calls.items():
                with pytest.raises(ApiError) as err:
                    await call
                out[expected] = err.value
            return out

    errors = asyncio.run(scenario())
    for expected, err in errors.items():
        fr, en = err.message("fr"), err.message("en")
        assert err.code == expected, (expected, err.status, err.error)
        assert err.error and err.error not in fr and not ENGLISH.search(fr), (expected, fr)
        assert fr != en and "{" not in fr + en
    assert "999" in errors["unknown_client"].message("fr")
    assert feature_label("AMT_INCOME_TOTAL", "fr") in errors["whatif_number"].message("fr")
    assert "Annual income" in errors["whatif_number"].message("en")
