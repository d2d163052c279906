"""The dashboard on loopback answers only requests naming an allowed host (DNS rebinding), with the API's error
shape otherwise; a real `credit ui` against a real `credit serve` of the test pipeline."""

from __future__ import annotations

import httpx
import pytest
from apiserver import OFFICER_KEY
from uiserver import UiServer


@pytest.fixture(scope="module")
def dashboard(api):
    with UiServer(api.url, OFFICER_KEY, lang="en") as server:
        yield server


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8080", "127.0.0.1.nip.example", "10.0.0.1"])
def test_a_foreign_host_header_is_refused_with_the_error_shape(dashboard, host):
    for path in ("/", "/?client_id=100003", "/monitoring", "/reports/drift", "/login"):
        r = httpx.get(dashboard.url + path, headers={"Host": host}, timeout=30)
        assert r.status_code == 400, (path, r.status_code)
        body = r.json()
        assert set(body) == {"error", "detail"} and body["error"] == "host not allowed"
        assert "100003" not in r.text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST"])
def test_loopback_names_are_answered(dashboard, host):
    r = httpx.get(dashboard.url + "/login", headers={"Host": f"{host}:{dashboard.port}"}, timeout=30)
    assert r.status_code == 200


def test_the_allow_list_is_a_setting(api):
    env = {"CREDIT_UI_ALLOWED_HOSTS": "dash.example, 127.0.0.1"}
    with UiServer(api.url, OFFICER_KEY, lang="en", env=env) as server:
        assert httpx.get(server.url + "/login", headers={"Host": "dash.example:80"}, timeout=30).status_code == 200
        assert httpx.get(server.url + "/login", headers={"Host": "localhost"}, timeout=30).status_code == 400
