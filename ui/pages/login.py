"""Login page, used only when the dashboard is bound to a non-loopback host (password required)."""

from __future__ import annotations

from nicegui import app, ui

from ui.i18n import t
from ui.pages import common
from ui.pages.common import _attr, check_password, error_box, lang


@ui.page("/login")
def login_page():
    lg = lang()
    ui.page_title(t("login_title", lg))
    ui.query("body").style("background:#f8fafc;color:#111827")
    with ui.card().classes("mx-auto mt-16 w-full max-w-sm").props("role=main"):
        ui.label(t("app_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=1")
        password = (
            ui.input(t("password", lg), password=True, password_toggle_button=True)
            .props(f'outlined autofocus aria-label="{_attr(t("password_aria", lg))}" data-testid=password')
            .classes("w-full")
            .mark("password")
        )
        messages = ui.column().classes("w-full")

        def submit() -> None:
            if check_password(password.value or ""):
                app.storage.user["authenticated"] = True
                ui.navigate.to("/")
            else:
                messages.clear()
                with messages:
                    error_box(t("login_failed", lg), lg)

        password.on("keydown.enter", submit)
        ui.button(t("login", lg), icon="login", on_click=submit).props("data-testid=login")
    if not common.CONFIG.password:
        ui.navigate.to("/")
