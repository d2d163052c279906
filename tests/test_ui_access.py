"""Access to the dashboard (issue 29 step 1): accounts with scrypt hashes, throttled logins, a Strict HttpOnly session
cookie, CSP and frame protection, cross-site requests refused before they can score, Socket.IO pinned to the
dashboard's own origin, and the prediction log naming the user (X-Credit-User, trusted only from the dashboard's
keys). Real parts: `credit serve` and `credit ui` on loopback over the test pipeline, headless chromium."""

from __future__ import annotations

import subprocess
import sys
import time

import apsw
import httpx
import pytest
from apiserver import ADMIN, ADMIN_KEY, KEYS, OFFICER_KEY, ApiServer, copy_pipeline
from browser_fixtures import needs_chromium
from hypothesis import given, settings
from hypothesis import strategies as st
from uiserver import ACCOUNTS, UiServer, login, users_text

from app.accounts import (
    FREE_FAILURES,
    AccountError,
    Authenticator,
    LoginThrottle,
    account_line,
    hash_password,
    load_accounts,
    parse_accounts,
    verify_password,
)
from app.store import default_path

EVIL = "http://evil.example"

# ---- accounts and passwords -------------------------------------------------------------------------------------


@settings(max_examples=4, deadline=None)
@given(st.text(min_size=8, max_size=40), st.text(min_size=1, max_size=40))
def test_a_password_verifies_against_its_own_hash_only(password, other):
    h = hash_password(password)
    assert h.startswith("scrypt$16384$8$1$") and password not in h
    assert verify_password(password, h)
    assert not verify_password(password + other, h)


def test_two_hashes_of_one_password_differ_by_their_salt():
    assert hash_password("same password") != hash_password("same password")


def test_account_lines_parse_and_bad_ones_are_named_without_secrets(tmp_path):
    line = account_line("agent.1", "officer", "a long password")
    accounts = parse_accounts(f"# comment\n{line}\n")
    assert accounts["agent.1"].role == "officer" and "a long password" not in repr(accounts)
    for bad, message in [
        ("noseparator", "name:role:hash"),
        ("bad name:officer:" + line.split(":", 2)[2], "is not 1-64"),
        ("x:boss:" + line.split(":", 2)[2], "unknown role"),
        ("x:officer:md5$abc", "scrypt$N$r$p$salt$hash"),
        ("x:officer:scrypt$1024$8$1$" + "A" * 24 + "$" + "A" * 44, "weaker than scrypt"),
        (f"{line}\n{line}", "appears twice"),
    ]:
        with pytest.raises(AccountError, match=message.replace("$", r"\$")) as info:
            parse_accounts(bad, source="users.txt")
        assert "users.txt line" in str(info.value)
    with pytest.raises(AccountError, match="at least 8"):
        hash_password("short")
    # environment first, else the file, else none
    path = tmp_path / "users"
    path.write_text(account_line("b", "admin", "another password") + "\n")
    assert set(load_accounts("", path)) == {"b"}
    assert set(load_accounts(line, path)) == {"agent.1"}
    assert load_accounts("", tmp_path / "missing") == {}


def test_credit_ui_account_prints_a_working_line():
    res = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "ui-account", "marie", "--role", "risk", "--password-stdin"],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    account = parse_accounts(res.stdout.strip())["marie"]
    assert account.role == "risk" and verify_password("correct horse battery", account.password_hash)
    short = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "ui-account", "marie", "--password-stdin"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode != 0 and "at least 8" in short.stderr and "Traceback" not in short.stderr


# ---- throttling -------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_back_off_exponentially_per_name_and_per_address():
    clock = Clock()
    throttle = LoginThrottle(clock=clock, max_wait=60)
    for _ in range(FREE_FAILURES):
        assert throttle.wait_seconds("agent", "10.0.0.1") == 0
        throttle.failed("agent", "10.0.0.1")
    waits = []
    for _ in range(8):
        wait = throttle.wait_seconds("agent", "10.0.0.1")
        waits.append(wait)
        clock.now += wait
        throttle.failed("agent", "10.0.0.1")
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    assert throttle.wait_seconds("AGENT", "10.0.0.9") > 0  # the name is locked from any address
    assert throttle.wait_seconds("other", "10.0.0.1") > 0  # and the address for any name
    assert throttle.wait_seconds("other", "10.0.0.9") == 0
    throttle.succeeded("agent")
    assert throttle.wait_seconds("agent", "10.0.0.9") == 0


def test_tries_sent_at_once_cannot_all_pass_the_throttle():
    from concurrent.futures import ThreadPoolExecutor

    throttle = LoginThrottle(clock=Clock())
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda _i: throttle.begin("agent", "10.0.0.1"), range(20)))
    assert sum(1 for w in waits if w == 0) == FREE_FAILURES  # the others are told to wait


def test_the_authenticator_checks_unknown_names_and_refuses_while_throttled():
    accounts = parse_accounts(account_line("agent", "officer", "right password"))
    auth = Authenticator(accounts, LoginThrottle(clock=Clock()))
    assert auth.check("agent", "right password", "a")[0].name == "agent"
    assert auth.check("nobody", "right password", "a") == (None, 0.0)
    for _ in range(FREE_FAILURES):
        assert auth.check("agent", "wrong password", "b") == (None, 0.0)
    account, wait = auth.check("agent", "right password", "b")  # the right password, but too soon
    assert account is None and wait > 0


# ---- against a real API and a real dashboard --------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(pipeline, tmp_path_factory):
    private = copy_pipeline(pipeline, tmp_path_factory.mktemp("access-api"))
    other = "other-officer-key-0c5e8d"
    with ApiServer(private.db, private.model_dir, keys=f"{KEYS},{other}:officer") as server:
        server.pipeline, server.other_key = private, other
        yield server


@pytest.fixture(scope="module")
def dashboard(api):
    with UiServer(api.url, ADMIN_KEY, lang="fr") as server:
        yield server


@pytest.fixture(scope="module")
def client_id(api) -> int:
    ids = httpx.get(api.url + "/clients", params={"prefix": "1", "limit": 5}, headers=ADMIN, timeout=30).json()
    return int(ids["client_ids"][0])


def log_rows(api) -> list[tuple]:
    conn = apsw.Connection(str(default_path(api.pipeline.db)), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return list(conn.execute("SELECT id, role, user_name, endpoint FROM prediction_log ORDER BY id"))
    finally:
        conn.close()


def test_the_api_logs_the_user_the_dashboard_names_and_refuses_it_from_other_keys(api, client_id):
    url = f"{api.url}/clients/{client_id}/score"
    before = len(log_rows(api))
    r = httpx.get(url, headers={**ADMIN, "X-Credit-User": "agent"}, timeout=30)
    assert r.status_code == 200
    r = httpx.post(  # through Litestar (not the fast path): the same rule
        f"{api.url}/clients/{client_id}/what-if",
        json={"application": {}},
        headers={"Authorization": f"Bearer {OFFICER_KEY}", "X-Credit-User": "risque"},
        timeout=30,
    )
    assert r.status_code == 200
    assert httpx.get(url, headers=ADMIN, timeout=30).status_code == 200
    forged = httpx.get(url, headers={"Authorization": f"Bearer {api.other_key}", "X-Credit-User": "agent"}, timeout=30)
    assert forged.status_code == 403 and "X-Credit-User" in forged.json()["error"]
    bad = httpx.get(url, headers={**ADMIN, "X-Credit-User": "a b"}, timeout=30)
    assert bad.status_code == 400 and set(bad.json()) == {"error", "detail"}
    rows = log_rows(api)[before:]
    assert [(role, user) for _i, role, user, _e in rows] == [("admin", "agent"), ("officer", "risque"), ("admin", None)]
    log = httpx.get(f"{api.url}/monitoring/log", params={"limit": 3}, headers=ADMIN, timeout=30).json()["rows"]
    assert [row["user_name"] for row in log] == [None, "risque", "agent"]


def test_every_page_needs_a_login_even_on_loopback(dashboard, api, client_id):
    before = len(log_rows(api))
    for path in ("/", f"/?client_id={client_id}", "/model", "/monitoring", "/model-card"):
        r = httpx.get(dashboard.url + path, timeout=30)
        assert r.status_code in (302, 303, 307) and r.headers["location"].endswith("/login"), (path, r.status_code)
    assert httpx.get(dashboard.url + "/reports/drift", timeout=30).status_code == 401
    assert len(log_rows(api)) == before


def test_the_hostile_request_of_the_issue_adds_no_prediction_log_row(dashboard, api, client_id):
    before = len(log_rows(api))
    for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}):
        r = httpx.get(f"{dashboard.url}/?client_id={client_id}", headers=headers, timeout=30)
        assert r.status_code == 403 and r.json()["error"] == "cross-site request refused"
        assert "content-security-policy" in r.headers
    # a link followed from another site: a page with a link to the same address, nothing scored
    r = httpx.get(
        f"{dashboard.url}/?client_id={client_id}",
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
        timeout=30,
    )
    assert r.status_code == 403 and f'href="/?client_id={client_id}"' in r.text
    assert len(log_rows(api)) == before


def test_csp_frame_protection_and_the_session_cookie(dashboard):
    r = httpx.get(dashboard.url + "/login", timeout=30)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_socket_io_accepts_only_the_dashboards_own_origin(dashboard):
    path = "/_nicegui_ws/socket.io/?EIO=4&transport=polling"
    own = httpx.get(dashboard.url + path, headers={"Origin": dashboard.url}, timeout=30)
    assert own.status_code == 200 and own.headers.get("access-control-allow-origin") in (None, dashboard.url)
    foreign = httpx.get(dashboard.url + path, headers={"Origin": EVIL}, timeout=30)
    assert foreign.status_code in (400, 403) and foreign.headers.get("access-control-allow-origin") != EVIL


def test_credit_ui_without_accounts_refuses_to_start(api):
    res = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "ui", "--port", "1", "--api", api.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CREDIT_UI_USERS_FILE": "/nonexistent/users", "HOME": "/tmp"},
    )
    assert res.returncode != 0 and "credit ui-account" in res.stderr and "Traceback" not in res.stderr


# ---- in chromium --------------------------------------------------------------------------------------------------


@pytest.mark.browser
@needs_chromium
def test_login_throttle_logout_and_the_logged_user(browser, dashboard, api, client_id):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        pg.goto(dashboard.url + f"/?client_id={client_id}")
        assert pg.url.endswith("/login")
        user = pg.locator("input[data-testid=user]")
        password = pg.locator("input[data-testid=password]")
        user.fill("risque")
        for attempt in range(FREE_FAILURES):
            password.fill(f"wrong password {attempt}")
            password.press("Enter")
            pg.wait_for_function("() => document.querySelector('input[data-testid=password]').value === ''")
            pg.get_by_text("Nom ou mot de passe incorrect.").first.wait_for()
        password.fill("risk-password-2b9e")  # the right password, but too soon after three failures
        password.press("Enter")
        pg.get_by_text("Trop d'essais manqués").first.wait_for()
        assert pg.url.endswith("/login")
        time.sleep(2.5)  # this address, too, waits 2 s after its third failure before any name may try again
        # the agent logs in; scores are logged with the agent's name
        before = len(log_rows(api))
        login(pg, dashboard.url, "agent")
        assert pg.get_by_test_id("user-name").inner_text() == "agent"
        assert pg.get_by_role("link", name="Surveillance").count() == 0  # an officer: no monitoring
        pg.goto(dashboard.url + f"/?client_id={client_id}")
        pg.get_by_test_id("probability").wait_for()
        rows = log_rows(api)[before:]
        assert rows and {user for _i, _r, user, _e in rows} == {"agent"}
        pg.goto(dashboard.url + "/monitoring")
        pg.get_by_text("Réservé aux administrateurs.").wait_for()
        pg.get_by_test_id("logout").click()
        pg.wait_for_url("**/login")
        pg.goto(dashboard.url + "/model")
        assert pg.url.endswith("/login")
    finally:
        context.close()


def test_accounts_of_the_test_dashboards_cover_every_role():
    assert {role for role, _pw in ACCOUNTS.values()} == {"officer", "risk", "admin"}
    assert set(parse_accounts(users_text())) == set(ACCOUNTS)
