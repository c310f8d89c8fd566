"""Browser tests: headless Debian chromium driven by Playwright against a live server."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

# What a page shows after a round trip through the sandbox (a scan, a reply polled into the
# chat) can take several seconds on a loaded 2-core machine: wait up to 15 s, not 5.
expect.set_options(timeout=15_000)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed: run `make services` (apt-get install chromium)"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()
