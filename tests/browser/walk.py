"""Helpers of the walk-through: a watched browser context, a form check, submitting a form.

Everything goes through URLs and visible labels, as a person in the browser would.
"""

from __future__ import annotations

import os
import pathlib
import re
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Locator, Page, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# Set WMB_WALKTHROUGH_SHOTS=/some/dir to keep a screenshot of every page the walk sees.
SHOTS = os.environ.get("WMB_WALKTHROUGH_SHOTS")

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI "
    "Language/zh_CN"
)

# The browser stays on this machine. WeChat's JS-SDK (loaded by pages meant for WeChat's
# browser) is faked at that boundary, as the sandbox fakes WeChat's API.
_OUTSIDE = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])[a-z]+://")
_WX_JS = re.compile(r"^https://res\.wx\.qq\.com/open/js/jweixin-[\d.]+\.js$")
_WX_JS_STUB = (
    "window.wx = {config: function () {}, ready: function (f) { f && f(); },"
    " error: function () {}, scanQRCode: function () {}};"
)

# Visible form fields a person could not type into, pick or tick.
_LOCKED_FIELDS = """() => [...document.querySelectorAll('main input, main textarea, main select')]
  .filter(e => !['hidden', 'submit', 'button', 'reset', 'image'].includes(e.type))
  .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
  .filter(e => e.disabled || e.readOnly || e.hasAttribute('readonly')
               || e.hasAttribute('disabled') || e.closest('fieldset[disabled]'))
  .map(e => e.name || e.id || e.outerHTML)"""

# Fields the browser's own validation stops a form at.
_INVALID_FIELDS = """() => [...document.querySelectorAll('input, textarea, select')]
  .filter(e => !e.checkValidity()).map(e => `${e.name}: ${e.validationMessage}`)"""


class Walker:
    """One browser context and its page, watched for server errors and browser errors."""

    def __init__(self, context: BrowserContext, name: str):
        self.context, self.name = context, name
        self.problems: list[str] = []
        self.pages_seen = 0
        context.set_default_timeout(10_000)
        context.on("response", self._response)
        context.on("console", self._console)
        context.on("weberror", lambda err: self.problems.append(f"page error: {err.error}"))
        context.route(_OUTSIDE, self._outside)
        self.page: Page = context.new_page()

    def _outside(self, route) -> None:
        if _WX_JS.match(route.request.url):
            route.fulfill(content_type="application/javascript", body=_WX_JS_STUB)
            return
        self.problems.append(f"request outside this machine: {route.request.url}")
        route.abort()

    def _response(self, response: Response) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def _console(self, msg) -> None:
        # Chromium asks every site for /favicon.ico; the product has none (cosmetic).
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            where = msg.page.url if msg.page else "?"
            self.problems.append(f"console error on {where}: {msg.text}")

    def check(self) -> None:
        """No 5xx, no console error and no uncaught script error so far."""
        assert not self.problems, "\n".join(self.problems)

    def shot(self, label: str) -> None:
        self.pages_seen += 1
        if SHOTS:
            folder = pathlib.Path(SHOTS)
            folder.mkdir(parents=True, exist_ok=True)
            parts = urlsplit(label)
            slug = re.sub(r"\W+", "-", parts.path + "-" + parts.query).strip("-")
            self.page.screenshot(path=folder / f"{self.name}-{self.pages_seen:02d}-{slug}.png")

    def open(self, url: str, *, form: bool = True) -> Response:
        """Go to a page: 2xx, every field editable (``form``), no error so far."""
        response = self.page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"
        self.landed(url, form=form)
        return response

    def follow(self, link: Locator, *, form: bool = True) -> Response:
        """Click a link (or a button of a GET form) and land on a 2xx page."""
        try:
            with self.page.expect_navigation() as nav:
                link.click()
        except PlaywrightTimeout as exc:
            invalid = self.page.evaluate(_INVALID_FIELDS)
            raise AssertionError(f"no page after the click on {self.page.url}: {invalid}") from exc
        response = nav.value
        if response is None or not response.ok:
            errors = self.page.locator(".error, .flash").all_inner_texts()
            raise AssertionError(f"{self.page.url}: {response and response.status} {errors}")
        self.landed(self.page.url, form=form)
        return response

    def submit(self, button: Locator) -> Response:
        """Submit a form with its button; the answer (after any redirect) is a 2xx page."""
        return self.follow(button, form=True)

    def landed(self, label: str, *, form: bool) -> None:
        self.page.wait_for_load_state()
        self.shot(label)
        if form:
            assert_editable(self.page)
        self.check()

    def saved(self, *texts: str) -> None:
        """A success message is shown, and each text is on the page."""
        expect(self.page.locator(".flash.success")).to_be_visible()
        expect(self.page.locator(".flash.error")).to_have_count(0)
        for text in texts:
            expect(self.page.locator("main")).to_contain_text(text)


def console(browser: Browser, base_url: str, name: str) -> Walker:
    """A new console context on a laptop screen (1366x900, zh-CN); close: ``w.context.close()``."""
    context = browser.new_context(
        base_url=base_url, locale="zh-CN", viewport={"width": 1366, "height": 900}
    )
    return Walker(context, name)


def console_login(w: Walker, brand: str, login: str, password: str) -> None:
    """Sign in to the console with its login form: brand code, phone or username, password."""
    w.open("/console/login")
    page = w.page
    page.get_by_label("品牌代码").fill(brand)
    page.get_by_label("手机号或用户名").fill(login)
    page.get_by_label("密码").fill(password)
    w.submit(page.get_by_role("button", name="登录"))


def assert_editable(page: Page) -> None:
    """Every visible input, textarea and select of the page can be changed."""
    locked = page.evaluate(_LOCKED_FIELDS)
    assert not locked, f"fields a person cannot change on {page.url}: {locked}"


def form_with(page: Page, button: str) -> Locator:
    """The form holding the button of this name."""
    return page.locator("form").filter(has=page.get_by_role("button", name=button, exact=True))
