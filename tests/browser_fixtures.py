"""Chromium for the browser tests, one set for every module (loaded by `pytest_plugins` in tests/conftest.py):
Debian's /usr/bin/chromium driven by Playwright, headless, one browser per test module (a module's tests open
their own contexts in it), and `open_context` for a context of a given size and language.

    pytestmark = [pytest.mark.browser, needs_chromium]

    def test_x(browser, dashboard):
        with open_context(browser, width=390, lang="en") as pg:
            pg.goto(dashboard.url)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from needs import needs

from app.rights import pdf

CHROMIUM = "/usr/bin/chromium"
# headless chromium's flags: the product's own (the letters' PDF printer), less the print-only one
CHROMIUM_ARGS = [flag for flag in pdf.FLAGS if flag != "--no-pdf-header-footer"]
needs_chromium = needs(CHROMIUM, "just system-deps")


@pytest.fixture(scope="module")
def browser():
    """One headless chromium for the module (Playwright's sync API; imported only by the modules that use it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def open_context(
    browser, *, width: int = 1280, height: int = 800, lang: str = "fr", timeout_ms: int = 60_000
) -> Iterator:
    """A fresh context (its own cookies) of that viewport and language, and its page; closed on the way out."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale=f"{lang}-FR")
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    try:
        yield page
    finally:
        context.close()
