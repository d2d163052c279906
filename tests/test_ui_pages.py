"""The dashboard's pages in process (NiceGUI's user simulation), against the REAL API in process: `create_app` over
a private copy of the test pipeline, reached through httpx's ASGI transport. No fake API: what the pages read is
what the API answers, decoded into the API's own msgspec types (ui/api_client.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import numpy as np
import pytest
from apiserver import copy_pipeline
from nicegui import ui
from uiserver import ACCOUNTS, users_text

from app.config import Settings
from ui import locale, logic
from ui.api_client import ApiClient

OFFICER_KEY, ADMIN_KEY = "officer-key", "admin-key"
KEYS = f"{OFFICER_KEY}:officer,{ADMIN_KEY}:admin"


@pytest.fixture(scope="module")
def data(pipeline, tmp_path_factory):
    return copy_pipeline(pipeline, tmp_path_factory.mktemp("ui-pages"))


class Recorder(httpx.AsyncBaseTransport):
    """The real API over ASGI, recording (path, key, start, end) of every call, optionally slowed down."""

    def __init__(self, app) -> None:
        self.inner, self.calls, self.delay = httpx.ASGITransport(app=app), [], 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        t0 = time.perf_counter()
        if self.delay:
            await asyncio.sleep(self.delay)
        response = await self.inner.handle_async_request(request)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.calls.append((request.url.path, key, t0, time.perf_counter()))
        return response


@pytest.fixture
def simulate(data, tmp_path, monkeypatch):
    """Run `scenario(user, api, recorder)` against the dashboard's pages; `api` is an httpx client of the same
    API, `recorder` the transport that saw the dashboard's calls."""
    return make_simulate(data, tmp_path, monkeypatch)


def make_simulate(data, tmp_path, monkeypatch):
    """The runner behind `simulate`; with `data` None every run must bring its own `transport` (no API is made)."""
    import importlib

    from nicegui import app
    from nicegui.storage import Storage
    from nicegui.testing.user_simulation import user_simulation

    from app.accounts import parse_accounts
    from app.service.api import create_app
    from ui.pages import common

    monkeypatch.setattr(Storage, "path", tmp_path / "storage")
    monkeypatch.setattr(app, "storage", Storage())

    def run(
        scenario,
        *,
        key: str = ADMIN_KEY,
        login_as: str | None = "admin",
        transport=None,
        admin_key: str | None = None,
        drift_min_rows: int = common.UiConfig.drift_min_rows,
        delay: float = 0.0,
    ):
        real = recorder = None
        if data is None:
            assert transport is not None, "without the pipeline's data, a run brings its own transport"
        else:
            real = create_app(Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=KEYS, keys_file=""))
            recorder = Recorder(real)
            recorder.delay = delay

        async def main():
            async with contextlib.AsyncExitStack() as stack:
                if data is not None:
                    await stack.enter_async_context(real.lifespan())
                user = await stack.enter_async_context(user_simulation())
                common.configure(
                    common.UiConfig(
                        api_url="http://api",
                        key=key,
                        lang="fr",
                        accounts=parse_accounts(users_text()),
                        admin_key=admin_key,
                        drift_min_rows=drift_min_rows,
                    )
                )
                common._api = ApiClient("http://api", key, transport=transport or recorder)
                if admin_key is not None and admin_key != key:
                    common._admin_api = ApiClient("http://api", admin_key, transport=transport or recorder)
                from ui.pages import client, login, model, model_card, monitoring

                for module in (
                    client,
                    login,
                    model,
                    monitoring,
                    model_card,
                ):  # re-register the routes reset by the simulation
                    importlib.reload(module)
                direct = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=real) if real is not None else transport,
                    base_url="http://api",
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                )
                try:
                    if login_as is not None:
                        await log_in(user, login_as)
                    if recorder is not None:
                        recorder.calls.clear()
                    await scenario(user, direct, recorder)
                finally:
                    await direct.aclose()
                    await common.close_api()
                    common.configure(common.UiConfig())

        asyncio.run(main())

    return run


async def log_in(user, name: str) -> None:
    await user.open("/login")
    user.find(marker="user").type(name)
    user.find(marker="password").type(ACCOUNTS[name][1]).trigger("keydown.enter")
    await user.should_see("Identifiant client", retries=40)


async def first_client(api) -> int:
    return (await api.get("/clients", params={"limit": 1})).json()["client_ids"][0]


def test_page_client_file_explanation_and_whatif(simulate):
    async def scenario(user, api, _rec):
        cid = await first_client(api)
        await user.open(f"/?client_id={cid}")
        score = (await api.get(f"/clients/{cid}/score")).json()
        await user.should_see(f"Client {cid}", retries=20)
        await user.should_see(f"Probabilité de défaut : {logic.fmt_prob(score['probability'])}")
        await user.should_see("Décision : " + {"refuse": "Refusé", "accept": "Accordé"}[score["decision"]])
        await user.should_see("Graphique en cascade", retries=40)
        await user.should_see("Surveillance")  # an admin: monitoring in the menu
        await user.should_see("par rapport au dossier", retries=40)
        number = next(iter(user.find(marker="whatif-EXT_SOURCE_2").elements))
        number.set_value(0.0)  # a very low external score: the risk goes up
        expected = (await api.post(f"/clients/{cid}/what-if", json={"application": {"EXT_SOURCE_2": 0.0}})).json()[
            "probability"
        ]
        await user.should_see(f"Nouvelle probabilité {logic.fmt_prob(expected)}", retries=40)
        assert expected > score["probability"]

    simulate(scenario)


def test_page_search_rejects_non_numbers_and_reports_unknown_clients(simulate):
    async def scenario(user, _api, _rec):
        await user.open("/")
        user.find(marker="search").type("abc").trigger("keydown.enter")
        await user.should_see("L'identifiant client doit être un nombre entier.")
        user.find(marker="search").clear().type("42").trigger("keydown.enter")
        await user.should_see("Aucun dossier ne porte l'identifiant 42. Vérifiez le numéro du client.", retries=20)
        await user.should_not_see("unknown client")

    simulate(scenario)


def test_page_officer_sees_no_monitoring(simulate):
    async def scenario(user, _api, _rec):
        await user.open("/model")
        await user.should_see("Importance globale (SHAP moyen absolu)", retries=20)
        await user.should_not_see("Surveillance")
        await user.open("/monitoring")
        await user.should_see("Réservé aux administrateurs.")

    simulate(scenario, key=OFFICER_KEY, login_as="agent")


def test_page_monitoring_for_an_admin_shows_the_apis_figures(simulate):
    async def scenario(user, api, _rec):
        ids = (await api.get("/clients", params={"limit": 30})).json()["client_ids"]
        await api.post("/score/batch", json={"client_ids": ids})
        summary = (await api.get("/monitoring/summary")).json()
        await user.open("/monitoring")
        await user.should_see("Requêtes", retries=20)
        await user.should_see(logic.fmt_value(summary["requests"], "fr"))
        await user.should_see("Distribution des scores dans le temps")
        await user.should_see("Performance réalisée (défauts observés)")
        await user.should_see("Équité des décisions")
        await user.should_see("Fiche du modèle")
        await user.should_see("Tranche d'âge", retries=1800)  # the fairness tables, filled in when they arrive
        await user.should_not_see("age_band")

    simulate(scenario)


def test_page_model_card_in_french_from_the_structured_data(simulate):
    async def scenario(user, api, _rec):
        manifest = (await api.get("/model")).json()
        await user.open("/model-card")
        await user.should_see(f"Identifiant du modèle : {manifest['model_id']}", retries=40)
        await user.should_see("Usage prévu")
        await user.should_see(f"AUC hors échantillon : {locale.fixed(manifest['metrics']['oof_auc'], 'fr', 4)}")
        await user.should_see(
            f"Refus quand la probabilité de défaut atteint {locale.percent(manifest['threshold'], 'fr')}."
        )
        await user.should_see("Équité à l'entraînement (hors échantillon)")
        await user.should_not_see("not recorded")
        await user.should_not_see("Honest performance")

    simulate(scenario)


def test_page_api_down(simulate):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def scenario(user, _api, _rec):
        await user.open("/?client_id=100002")
        await user.should_see("L'API est injoignable (http://api). Vérifiez qu'elle est démarrée.")

    simulate(scenario, transport=httpx.MockTransport(refuse))


def test_page_login_names_the_user_and_logout_ends_the_session(simulate):
    async def scenario(user, _api, _rec):
        await user.open("/")  # redirected
        await user.should_see("Mot de passe")
        user.find(marker="user").type("agent")
        user.find(marker="password").type("nope, not this").trigger("keydown.enter")
        await user.should_see("Nom ou mot de passe incorrect.", retries=40)
        user.find(marker="password").clear().type(ACCOUNTS["agent"][1]).trigger("keydown.enter")
        await user.should_see("Identifiant client", retries=40)
        await user.should_see("agent")
        user.find(marker="logout").click()
        await user.should_see("Mot de passe", retries=20)

    simulate(scenario, login_as=None)


def test_page_search_suggestions(simulate):
    async def scenario(user, api, _rec):
        cid = str(await first_client(api))
        await user.open("/")
        user.find(marker="search").type(cid[:5])
        await user.should_see(kind=ui.button, content=cid, retries=20)  # GET /clients?prefix=... -> buttons
        user.find(kind=ui.button, content=cid).click()
        await user.should_see(f"Client {cid}", retries=20)

    simulate(scenario)


def test_page_landing_worklist_counts_bands_and_rows_that_open_the_file(simulate):
    async def scenario(user, api, _rec):
        portfolio = (await api.get("/portfolio")).json()
        borderline = (await api.get("/portfolio/borderline", params={"limit": 10})).json()["rows"]
        await user.open("/")
        await user.should_see("Portefeuille du jour", retries=40)
        await user.should_see("Dossiers proches du seuil")
        await user.should_see("Derniers clients scorés")
        await user.should_see(logic.fmt_value(portfolio["refused"], "fr"))
        await user.should_see(logic.fmt_value(portfolio["accepted"], "fr"))
        await user.should_see("Clients par tranche de probabilité de défaut")
        nearest = borderline[0]["client_id"]
        links = [el for el in user.find(kind=ui.link).elements if f"client_id={nearest}" in str(el.props.get("href"))]
        assert links, "the borderline client has no link to its file"
        await user.open(f"/?client_id={nearest}")
        await user.should_see(f"Client {nearest}", retries=20)

    simulate(scenario)


def test_page_client_information_is_labelled_without_internal_fields(simulate):
    async def scenario(user, api, _rec):
        cid = await first_client(api)
        await user.open(f"/?client_id={cid}")
        await user.should_see("Informations du client", retries=40)
        table = next(iter(user.find(marker="client-fields").elements))
        fields = [r["field"] for r in table.rows]
        assert "split" not in fields and "Âge (ans)" in fields and "Revenu annuel" in fields
        assert not any("_" in f for f in fields)

    simulate(scenario)


def test_page_client_calls_run_concurrently_with_the_officer_key(simulate):
    async def scenario(user, api, rec):
        cid = await first_client(api)
        rec.calls.clear()
        await user.open(f"/?client_id={cid}")
        await user.should_see("par rapport au dossier", retries=80)
        calls = [c for c in rec.calls if c[0].startswith((f"/clients/{cid}", "/model"))]
        assert len(calls) >= 5
        in_flight = max(sum(1 for c in calls if c[2] <= t < c[3]) for _p, _k, t, _e in calls)
        assert in_flight >= 4, f"at most {in_flight} API calls at once: {[c[0] for c in calls]}"
        serial = sum(e - b for _p, _k, b, e in calls)
        span = max(e for *_x, e in calls) - min(b for _p, _k, b, _e in calls)
        print(f"\nclient page, 0.2 s added per API call: {len(calls)} calls in {span:.2f} s (serial {serial:.2f} s)")
        assert {k for p, k, _b, _e in rec.calls if not p.startswith("/monitoring")} == {OFFICER_KEY}

    simulate(scenario, key=OFFICER_KEY, admin_key=ADMIN_KEY, login_as="agent", delay=0.2)


def test_page_monitoring_uses_the_admin_key_labels_latencies_and_the_minimum_window(simulate):
    async def scenario(user, api, rec):
        ids = (await api.get("/clients", params={"limit": 20})).json()["client_ids"]
        await api.post("/score/batch", json={"client_ids": ids})
        rows = (await api.get("/monitoring/drift")).json()["window"]["rows"]
        rec.calls.clear()
        await user.open("/monitoring")
        await user.should_see("Temps de calcul dans le serveur, p50 (ms)", retries=40)
        await user.should_see("Temps de réponse HTTP vu par le tableau de bord, p50 (ms)")
        await user.should_not_see("Latence p50")
        await user.should_see(f"Pas assez de trafic pour juger la dérive ({rows} scores dans la fenêtre, au moins 6000")
        assert {k for p, k, _b, _e in rec.calls if p.startswith("/monitoring")} == {ADMIN_KEY}

    simulate(scenario, key=OFFICER_KEY, admin_key=ADMIN_KEY, drift_min_rows=6000, login_as="admin")


def test_the_dashboard_names_its_user_in_the_prediction_log(simulate, data):
    import apsw

    from app.store import default_path

    async def scenario(user, api, _rec):
        cid = await first_client(api)
        await user.open(f"/?client_id={cid}")
        await user.should_see("par rapport au dossier", retries=80)

    simulate(scenario, key=OFFICER_KEY, login_as="agent")
    conn = apsw.Connection(str(default_path(data.db)), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        users = [r[0] for r in conn.execute("SELECT user_name FROM prediction_log ORDER BY id DESC LIMIT 2")]
    finally:
        conn.close()
    assert users == ["agent", "agent"]  # the score and the what-if of the file just opened
    assert np.all(np.array(users) == "agent")


@pytest.mark.parametrize("value", ["abc", "0", "012", "1e5", "99999999999999999999", "%20"])
def test_a_bad_client_id_in_the_url_is_answered_inside_the_dashboard_in_french(simulate, value):
    async def scenario(user, _api, rec):
        await user.open(f"/?client_id={value}")
        await user.should_see("n'est pas un identifiant client", retries=20)
        await user.should_see("Portefeuille du jour", retries=40)  # the worklist below, in the dashboard's frame
        assert not [p for p, *_ in rec.calls if p.startswith("/clients/")]  # nothing asked of the API about it

    simulate(scenario, login_as="agent")
