"""The decision letter in headless Debian chromium: from the dashboard's client page (the link under the score
opens the letter of the decision on screen), in French and English, kept as artefacts in test-artifacts/
(letter-browser-fr.png, letter-browser-en.png, and the page printed by the browser, letter-browser-*.pdf)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from apiserver import ADMIN, ADMIN_KEY, ApiServer, copy_pipeline
from browser_fixtures import needs_chromium
from decisions import refused
from uiserver import UiServer, login

from app.rights.pdf import page_count
from app.scoring.bundle import ModelBundle

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 120_000

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def api(pipeline, tmp_path_factory):
    private = copy_pipeline(pipeline, tmp_path_factory.mktemp("letter-ui"))
    with ApiServer(private.db, private.model_dir, timeout=240) as server:  # a loaded machine starts it slowly
        server.pipeline = private
        yield server


@pytest.fixture(scope="module")
def dashboard(api):
    with UiServer(api.url, ADMIN_KEY, lang="fr", timeout=240) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(api) -> int:
    return refused(ModelBundle.load(api.pipeline.model_dir), api.pipeline.db, 1)[0]


def test_letter_link_on_the_client_page_opens_the_letter_of_that_decision(browser, dashboard, api, client_id):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        login(page, dashboard.url, "agent")
        page.goto(f"{dashboard.url}/?client_id={client_id}")
        page.get_by_test_id("probability").wait_for()
        link = page.get_by_test_id("letter-link")
        href = link.get_attribute("href")
        assert href and href.startswith("/letter/") and "lang=fr" in href
        request_id = href.split("/letter/")[1].split("?")[0]
        with context.expect_page() as new:
            link.click()
        letter = new.value
        letter.set_default_timeout(TIMEOUT_MS)
        letter.get_by_test_id("letter").wait_for()
        text = letter.inner_text("body")
        assert request_id in text and "Vos droits" in text and "2023/2225" in text
        assert letter.get_by_test_id("letter").get_attribute("data-decision") == "refuse"
        assert 1 <= letter.locator("[data-testid=letter-reasons] li").count() <= 4
        ARTIFACTS.mkdir(exist_ok=True)
        letter.screenshot(path=str(ARTIFACTS / "letter-browser-fr.png"), full_page=True)
        pdf = letter.pdf(format="A4", print_background=True)
        (ARTIFACTS / "letter-browser-fr.pdf").write_bytes(pdf)
        assert page_count(pdf) == 1
        # the same decision's letter in English, through the dashboard's route
        letter.goto(f"{dashboard.url}/letter/{request_id}?lang=en")
        letter.get_by_test_id("letter").wait_for()
        text = letter.inner_text("body")
        assert "Your rights" in text and "Human review" not in text and request_id in text
        letter.screenshot(path=str(ARTIFACTS / "letter-browser-en.png"), full_page=True)
        pdf = letter.pdf(format="A4", print_background=True)
        (ARTIFACTS / "letter-browser-en.pdf").write_bytes(pdf)
        assert page_count(pdf) == 1
    finally:
        context.close()
    for lang in ("fr", "en"):
        assert (ARTIFACTS / f"letter-browser-{lang}.png").stat().st_size > 20_000
    # both letters were recorded by the API, in the logged-in officer's name
    doc = httpx.get(
        f"{api.url}/clients/{client_id}/rights-export", params={"by": "test"}, headers=ADMIN, timeout=60
    ).json()
    issued = [(x["lang"], x["issued_by"], x["request_id"]) for x in doc["letters"]]
    assert issued == [("fr", "agent", request_id), ("en", "agent", request_id)]
