"""Every page of the dashboard in French, in headless Debian chromium, against the real API over the test pipeline:
no word of the English source vocabulary (Home Credit category values, raw attribute names, the API's English
messages) and no number written the English way. Screenshots of every page at 1280 and 390 px, in French and
English, are kept in $CREDIT_UI_ARTIFACTS (default: `ui-screens` under pytest's temporary folder, printed), with
the officer's page load times (page-load.json)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from apiserver import ADMIN, ADMIN_KEY, ApiServer, copy_pipeline
from browser_fixtures import needs_chromium
from uiserver import UiServer, login

from app.data import synthetic
from ui import categories

TIMEOUT_MS = 90_000

pytestmark = [pytest.mark.browser, needs_chromium]


def english_vocabulary() -> set[str]:
    """Words a French page must not show: category values whose French label differs, raw attribute names, the
    API's and the model's English phrases."""
    values = [
        v for lst in (synthetic.OCCUPATIONS, synthetic.FAMILY, synthetic.EDUCATION, synthetic.HOUSING) for v, _ in lst
    ]
    values += list(synthetic.INCOME_TYPES) + ["Cash loans", "Revolving loans", "Self-employed"]
    words = {v for v in values if categories.category(v, "fr") != v}
    words |= {"gender", "age_band", "family_status", "log-odds", "unknown client", "written with digits only"}
    words |= {"lowest honest cost", "not recorded", "Probability of default", "Threshold"}
    return words


# a number written the English way: 1,234 grouping or 0.554 decimals (French: 1 234 and 0,554)
ENGLISH_NUMBER = re.compile(r"(?<![\w.,])[1-9]\d{0,2}(?:,\d{3})+(?![\d,])|(?<![\w.])\d+\.\d+(?![\w.])")


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CREDIT_UI_ARTIFACTS") or tmp_path_factory.mktemp("ui-screens"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots and page-load.json in {folder}")
    return folder


@pytest.fixture(scope="module")
def api(pipeline, tmp_path_factory):
    private = copy_pipeline(pipeline, tmp_path_factory.mktemp("ui-french-api"))
    with ApiServer(private.db, private.model_dir) as server:
        ids = httpx.get(server.url + "/clients", params={"limit": 100}, headers=ADMIN, timeout=30).json()["client_ids"]
        for _ in range(3):  # a drift window of at least 200 scores
            httpx.post(server.url + "/score/batch", json={"client_ids": ids}, headers=ADMIN, timeout=60)
        server.client_id = ids[0]
        yield server


@pytest.fixture(scope="module")
def dashboard(api):
    with UiServer(api.url, ADMIN_KEY, lang="fr") as server:
        yield server


def pages(client_id: int) -> list[tuple[str, str, str]]:
    return [
        ("landing", "/", "worklist-clients"),
        ("client", f"/?client_id={client_id}", "reasons"),
        ("bad-parameter", "/?client_id=abc", "error"),
        ("model", "/model", "model-id"),
        ("monitoring", "/monitoring", "kpis"),
        ("drift-report", "/drift-report", "drift-summary"),
    ]


def visible_text(pg) -> str:
    """The page's text, without the parts that are identifiers rather than words (version, model id)."""
    return pg.evaluate(
        """() => {
            const hidden = [...document.querySelectorAll('[data-testid=app-version], [data-testid=model-id]')];
            hidden.forEach(e => e.style.setProperty('display', 'none'));
            const text = document.body.innerText;  // what is rendered: no scripts, no hidden elements
            hidden.forEach(e => e.style.removeProperty('display'));
            return text;
        }"""
    )


def open_page(pg, url: str, ready: str) -> None:
    pg.goto(url, wait_until="domcontentloaded")  # the drift report's frame loads Evidently's detail for long
    pg.get_by_test_id(ready).first.wait_for()
    time.sleep(0.8)  # charts' first paint


def test_every_page_in_french_has_no_english_word_and_french_numbers(browser, dashboard, api, artefacts):
    vocabulary = english_vocabulary()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    found: dict[str, list[str]] = {}
    try:
        login(pg, dashboard.url, "admin")
        for name, path, ready in pages(api.client_id):
            open_page(pg, dashboard.url + path, ready)
            if name == "client":  # the tab panels are drawn when shown
                for tab in ("Comparaison", "Simulation"):
                    pg.get_by_role("tab", name=tab).click()
                pg.get_by_test_id("whatif-result").wait_for()
                time.sleep(1.0)
            text = visible_text(pg)
            bad = sorted(w for w in vocabulary if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text))
            bad += sorted(set(ENGLISH_NUMBER.findall(text)))
            if bad:
                found[name] = bad
    finally:
        context.close()
    assert not found, f"English words or numbers in French pages: {found}"


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_every_page_fits_and_is_kept_as_a_screenshot(browser, dashboard, api, artefacts, lang, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, locale=f"{lang}-FR")
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    try:
        login(pg, dashboard.url, "admin")
        if lang == "en":
            pg.get_by_test_id("lang-toggle").click()
            pg.wait_for_function("document.documentElement.lang === 'en'")
        for name, path, ready in pages(api.client_id):
            open_page(pg, dashboard.url + path, ready)
            shot = artefacts / f"{name}-{lang}-{width}.png"
            pg.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 5_000
            overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name}: horizontal scrolling at {width}px ({overflow}px)"
    finally:
        context.close()


def test_officer_page_load(browser, dashboard, api, artefacts):
    """Time until the officer's client file is complete (score, explanation, information), best of 3."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    times = []
    try:
        login(pg, dashboard.url, "agent")
        for _ in range(3):
            t0 = time.perf_counter()
            pg.goto(f"{dashboard.url}/?client_id={api.client_id}")
            pg.get_by_test_id("reasons").wait_for()
            pg.get_by_test_id("client-fields").wait_for()
            times.append(time.perf_counter() - t0)
    finally:
        context.close()
    (artefacts / "page-load.json").write_text(json.dumps({"seconds": times, "best": min(times)}))
    print(f"\nofficer client file complete in {min(times):.2f} s (best of 3: {[round(t, 2) for t in times]})")
    assert min(times) < 30
