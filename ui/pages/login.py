"""Login page: a name and a password checked against the dashboard's accounts (app/accounts.py), throttled."""

from __future__ import annotations

import asyncio

from nicegui import ui

from ui.i18n import t
from ui.pages import common
from ui.pages.common import _attr, error_box, lang


def client_address() -> str:
    request = getattr(ui.context.client, "request", None)
    peer = getattr(request, "client", None)
    return getattr(peer, "host", None) or "unknown"


@ui.page("/login")
def login_page():
    lg = lang()
    ui.page_title(t("login_title", lg))
    ui.query("body").style("background:#f8fafc;color:#111827")
    ui.run_javascript(f"document.documentElement.lang = '{lg}'")
    address = client_address()
    with ui.card().classes("mx-auto mt-16 w-full max-w-sm").props("role=main"):
        ui.label(t("app_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=1")
        name = (
            ui.input(t("user_name", lg))
            .props(f'outlined autofocus autocomplete=username aria-label="{_attr(t("user_name", lg))}"')
            .props("data-testid=user")
            .classes("w-full")
            .mark("user")
        )
        password = (
            ui.input(t("password", lg), password=True, password_toggle_button=True)
            .props(f'outlined autocomplete=current-password aria-label="{_attr(t("password_aria", lg))}"')
            .props("data-testid=password")
            .classes("w-full")
            .mark("password")
        )
        messages = ui.column().classes("w-full")

        async def submit() -> None:
            account, wait = await asyncio.to_thread(common.AUTH.check, name.value or "", password.value or "", address)
            password.value = ""
            if account is not None:
                common.log_in(account)
                ui.navigate.to("/")
                return
            messages.clear()
            with messages:
                if wait > 0:
                    error_box(t("login_throttled", lg, seconds=max(1, round(wait))), lg)
                else:
                    error_box(t("login_failed", lg), lg)

        name.on("keydown.enter", submit)
        password.on("keydown.enter", submit)
        ui.button(t("login", lg), icon="login", on_click=submit).props("data-testid=login")
    if common.logged_in():
        ui.navigate.to("/")
