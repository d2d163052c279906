"""Override and review rates on the dashboard (ui/pages/rights_rates.py) in headless Debian chromium: decisions asked
for by two officers through the API, an override with four eyes and an overturned review, then the page as the risk
user, in French and English (artefacts test-artifacts/rights-rates-{fr,en}.png), its figures those of
GET /monitoring/human-decisions in the page's number format; an officer gets neither the page nor its link."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from apiserver import ADMIN, ADMIN_KEY, OFFICER, ApiServer, copy_pipeline
from browser_fixtures import needs_chromium, open_context
from decisions import refused
from uiserver import UiServer, login

from app.scoring.bundle import ModelBundle
from ui import locale

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 120_000

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def api(pipeline, tmp_path_factory):
    private = copy_pipeline(pipeline, tmp_path_factory.mktemp("rates-ui"))
    with ApiServer(private.db, private.model_dir, timeout=240) as server:  # a loaded machine starts it slowly
        server.pipeline = private
        yield server


@pytest.fixture(scope="module")
def acted(api) -> dict:
    """Four decisions (three asked for by `agent`, one by `chloe`), agent overrides the first (approved by the risk
    user when four eyes apply) and records a review of the second, which the risk user overturns."""
    ids = refused(ModelBundle.load(api.pipeline.model_dir), api.pipeline.db, 4)
    rids = []
    for cid, who in zip(ids, ("agent", "agent", "agent", "chloe"), strict=True):
        r = httpx.get(f"{api.url}/clients/{cid}/score", headers={**OFFICER, "X-Credit-User": who}, timeout=60)
        assert r.status_code == 200, r.text
        rids.append(r.json()["request_id"])
    body = {"by": "agent", "decision": "accept", "reason": "guarantee", "comment": "parents stand surety"}
    ov = httpx.post(f"{api.url}/decisions/{rids[0]}/override", json=body, headers=OFFICER, timeout=30)
    assert ov.status_code == 201, ov.text
    if ov.json()["status"] == "pending":
        second = {"by": "risque", "approve": True, "comment": "deed seen"}
        r = httpx.post(f"{api.url}/overrides/{rids[0]}/second", json=second, headers=ADMIN, timeout=30)
        assert r.status_code == 200, r.text
    body = {"by": "agent", "client_view": "I have a new job"}
    rv = httpx.post(f"{api.url}/decisions/{rids[1]}/reviews", json=body, headers=OFFICER, timeout=30)
    assert rv.status_code == 201, rv.text
    decision = {"by": "risque", "outcome": "overturn", "reason": "new_information", "comment": "contract seen"}
    r = httpx.post(f"{api.url}/reviews/{rv.json()['id']}/decision", json=decision, headers=ADMIN, timeout=30)
    assert r.status_code == 200, r.text
    rates = httpx.get(f"{api.url}/monitoring/human-decisions", params={"period": "day"}, headers=ADMIN, timeout=30)
    assert rates.status_code == 200, rates.text
    return rates.json()


@pytest.fixture(scope="module")
def dashboard(api):
    with UiServer(api.url, ADMIN_KEY, lang="fr", timeout=240) as server:  # a loaded machine starts it slowly
        yield server


def cells(page, testid: str) -> list[list[str]]:
    rows = page.locator(f"[data-testid={testid}] tbody tr")
    return [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]


def test_the_risk_user_sees_the_rates_by_officer_band_and_day_in_both_languages(browser, dashboard, acted):
    overall = acted["overall"]
    assert (overall["decisions"], overall["overrides"], overall["reviews"], overall["overturned"]) == (4, 1, 1, 1)
    with open_context(browser, height=1400, lang="fr", timeout_ms=TIMEOUT_MS) as page:
        login(page, dashboard.url, "risque")
        link = page.get_by_role("link", name="Dérogations et réexamens")
        assert link.get_attribute("href") == "/rights-rates"
        page.goto(f"{dashboard.url}/rights-rates?period=day")
        page.get_by_test_id("rr-officers").wait_for()
        assert page.get_by_test_id("rr-override_rate").inner_text() == locale.percent(0.25, "fr") == "25,0\u00a0%"
        assert page.get_by_test_id("rr-overturn_rate").inner_text() == locale.percent(1.0, "fr")
        officers = {row[0]: row for row in cells(page, "rr-officers")}
        # agent: 3 decisions, 1 override (1/3), 1 credit granted, 1 review recorded (1/3), all the overrides
        assert officers["agent"][1:4] == ["3", "1", locale.percent(1 / 3, "fr")]
        assert officers["agent"][7:] == ["1", locale.percent(1 / 3, "fr"), locale.percent(1.0, "fr")]
        assert officers["chloe"][1:3] == ["1", "0"]
        bands = cells(page, "rr-bands")
        assert sum(int(r[1]) for r in bands) == 4 and all("%" in r[0] for r in bands)
        periods = cells(page, "rr-periods")
        day = acted["by_period"][0]["period"]
        assert len(periods) == 1 and periods[0][0] == locale.when(day, "fr", with_time=False)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "rights-rates-fr.png"), full_page=True)
        page.get_by_test_id("lang-toggle").click()
        page.get_by_text("Overrides and reviews: the human decisions").wait_for()
        page.get_by_test_id("rr-officers").wait_for()
        assert page.get_by_test_id("rr-override_rate").inner_text() == "25.0%"
        headers = page.locator("[data-testid=rr-officers] thead th").all_inner_texts()
        assert "Override rate" in " ".join(headers) and "Share of overrides" in " ".join(headers)
        page.goto(f"{dashboard.url}/rights-rates?period=month")
        page.get_by_test_id("rr-periods").wait_for()
        month = cells(page, "rr-periods")[0][0]
        assert month == locale.month(acted["by_period"][0]["period"][:7], "en") and month[0].isupper()
        page.screenshot(path=str(ARTIFACTS / "rights-rates-en.png"), full_page=True)
    for lang in ("fr", "en"):
        assert (ARTIFACTS / f"rights-rates-{lang}.png").stat().st_size > 20_000


def test_an_officer_sees_neither_the_page_nor_its_link(browser, dashboard, acted):
    with open_context(browser, height=900, lang="fr", timeout_ms=TIMEOUT_MS) as page:
        login(page, dashboard.url, "agent")
        assert page.get_by_role("link", name="Dérogations et réexamens").count() == 0
        page.goto(f"{dashboard.url}/rights-rates")
        page.get_by_test_id("error").wait_for()
        assert "un conseiller ne voit pas les taux des autres" in page.get_by_test_id("error").inner_text()
        assert page.get_by_test_id("rr-officers").count() == 0 and "chloe" not in page.inner_text("body")
        # the letter route (the API client's public letter()) says why when the API has no such decision
        answer = page.goto(f"{dashboard.url}/letter/no-such-request?lang=fr")
        text = page.inner_text("body")
        assert answer.status == 404 and "Aucune décision enregistrée ne porte cette référence" in text
        assert "no logged decision" not in text
