"""Shared state of the dashboard process (configuration, API client) and the page frame."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi.responses import RedirectResponse
from nicegui import app, ui

from app import __version__
from app.accounts import Account, Authenticator
from app.config import Settings
from ui.api_client import ApiClient, ApiError
from ui.i18n import LANGS, other_lang, t


@dataclass
class UiConfig:
    api_url: str = "http://127.0.0.1:8000"
    key: str = ""  # officer key: client and model pages
    lang: str = "fr"
    accounts: dict[str, Account] = field(default_factory=dict)  # who may log in (app/accounts.py)
    timeout: float = 10.0
    admin_key: str | None = None  # monitoring only; None: the same key
    allowed_hosts: frozenset[str] = frozenset({"localhost", "127.0.0.1", "[::1]"})
    drift_min_rows: int = Settings().drift_min_rows  # fewest scored rows for a drift verdict (`credit drift`'s rule)


SESSION_SECONDS = 8 * 3600  # a login lasts a working day; the session cookie's max age (ui/main.py)
CONFIG = UiConfig()
AUTH = Authenticator({})
_api: ApiClient | None = None
_admin_api: ApiClient | None = None


def configure(cfg: UiConfig) -> None:
    global CONFIG, AUTH, _api, _admin_api
    CONFIG = cfg
    AUTH = Authenticator(cfg.accounts)
    _api = _admin_api = None


def _officer_api() -> ApiClient:
    global _api
    if _api is None:
        _api = ApiClient(CONFIG.api_url, CONFIG.key, timeout=CONFIG.timeout)
    return _api


def api() -> ApiClient:
    """The API with the officer key (everything but monitoring), on behalf of the logged-in user."""
    return _officer_api().for_user(user_name())


def admin_api() -> ApiClient:
    """The API with the admin key: only when monitoring is asked for (by an admin user)."""
    global _admin_api
    if CONFIG.admin_key is None or CONFIG.admin_key == CONFIG.key:
        return api()
    if _admin_api is None:
        _admin_api = ApiClient(CONFIG.api_url, CONFIG.admin_key, timeout=CONFIG.timeout)
    return _admin_api.for_user(user_name())


async def close_api() -> None:
    global _api, _admin_api
    for client in {id(c): c for c in (_api, _admin_api) if c is not None}.values():
        await client.aclose()
    _api = _admin_api = None


def lang() -> str:
    value = app.storage.user.get("lang", CONFIG.lang)
    return value if value in LANGS else "fr"


def current_account() -> Account | None:
    """The logged-in account of this browser: its session is younger than SESSION_SECONDS and the account still
    exists with the same role (accounts are read when `credit ui` starts)."""
    session = app.storage.user.get("login")
    if not isinstance(session, dict):
        return None
    account = CONFIG.accounts.get(str(session.get("name")))
    if account is None or account.role != session.get("role"):
        return None
    if not 0 <= time.time() - float(session.get("since", 0)) < SESSION_SECONDS:
        return None
    return account


def user_name() -> str | None:
    account = current_account()
    return account.name if account else None


def log_in(account: Account) -> None:
    app.storage.user["login"] = {"name": account.name, "role": account.role, "since": time.time()}


def log_out() -> None:
    app.storage.user.pop("login", None)
    app.storage.user.pop("client", None)


def logged_in() -> bool:
    return current_account() is not None


def login_redirect() -> RedirectResponse | None:
    return None if logged_in() else RedirectResponse("/login")


async def is_admin() -> bool:
    """Whether the logged-in user may see monitoring (the admin role)."""
    account = current_account()
    return account is not None and account.role == "admin"


def error_box(error: ApiError | str, lang_: str) -> ui.element:
    """A visible, announced error message (role=alert), dark red text on a pale background."""
    text = error.message(lang_) if isinstance(error, ApiError) else error
    with (
        ui.row()
        .classes("items-center gap-2 p-3 rounded w-full")
        .style("background:#ffebee;color:#b71c1c;border:1px solid #b71c1c")
        .props("role=alert data-testid=error") as box
    ):
        ui.icon("error", size="sm").props('aria-hidden="true"')
        ui.label(text).classes("font-medium")
    return box


def caption(text: str) -> ui.label:
    """Text alternative of a chart: visible, small, and tied to the chart with aria-describedby."""
    return ui.label(text).classes("text-sm").style("color:#374151").props("data-testid=caption")


def chart(option: dict, summary: str, height: str = "h-64") -> ui.echart:
    """An ECharts element exposed to assistive technology as an image whose label is `summary`; its value axes
    write their numbers in the page's language (ui.logic.localize_axes)."""
    from ui.logic import localize_axes

    el = ui.echart(localize_axes(option, lang())).classes(f"w-full {height}")
    el.props(f'role=img aria-label="{_attr(summary)}"')
    caption(summary)
    return el


def _attr(text: str) -> str:
    return text.replace('"', "'")


async def frame(active: str, title: str) -> ui.column:
    """Header (title, navigation, language toggle, logout) and the main column; returns the column."""
    lg = lang()
    ui.page_title(f"{title} — {t('app_title', lg)}")
    ui.colors(primary="#0d47a1")
    ui.query("body").style("background:#f8fafc;color:#111827")
    ui.run_javascript(f"document.documentElement.lang = '{lg}'")
    admin = await is_admin()
    with ui.header().classes("items-center justify-between flex-wrap gap-2 px-4 py-2").style("background:#0d47a1"):
        with ui.row().classes("items-baseline gap-2"):
            ui.label(t("app_title", lg)).classes("text-lg font-bold text-white")
            ui.label(f"v{__version__}").classes("text-xs text-white").props("data-testid=app-version")
        with ui.row().classes("items-center gap-1 flex-wrap").props('role=navigation aria-label="Menu"'):
            links = [("client", "/", t("nav_client", lg)), ("model", "/model", t("nav_model", lg))]
            if admin:
                links.append(("monitoring", "/monitoring", t("nav_monitoring", lg)))
            if getattr(current_account(), "role", None) in ("risk", "admin"):  # ui/pages/rights_rates.py
                links.append(("rights_rates", "/rights-rates", t("nav_rights_rates", lg)))
            for key, href, text in links:
                link = ui.link(text, href).classes("text-white px-2 py-1 rounded no-underline")
                if key == active:
                    link.classes("bg-white/20 font-bold").props('aria-current="page"')

            def toggle() -> None:
                app.storage.user["lang"] = other_lang(lang())
                ui.navigate.reload()

            ui.button(t("lang_toggle", lg), icon="translate", on_click=toggle).props(
                f'flat text-color=white aria-label="{_attr(t("lang_toggle_aria", lg))}" data-testid=lang-toggle'
            )

            def logout() -> None:
                log_out()
                ui.navigate.to("/login")

            account = current_account()
            if account is not None:
                ui.label(account.name).classes("text-white text-sm px-1").props("data-testid=user-name")
            ui.button(t("logout", lg), icon="logout", on_click=logout).props(
                "flat text-color=white data-testid=logout"
            ).mark("logout")
    main = ui.column().classes("w-full max-w-6xl mx-auto p-2 sm:p-4 gap-4").props("role=main id=main")
    ui.skip_link(t("skip", lg), target=main)
    with main:
        ui.label(title).classes("text-2xl font-bold").props("role=heading aria-level=1")
    return main
