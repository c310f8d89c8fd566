"""The sandbox's stand-in for WeixinJSBridge's payment (``static/sandbox/wxpay.js``) on member
pages: its script tag, rendered once per app, language and mount point, since every member
page includes it (``{{ pay_shim() }}``); nothing at all unless the sandbox is on."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_babel import get_locale
from markupsafe import Markup

_CACHE: dict[tuple, Markup] = {}


def pay_shim() -> Markup:
    app = current_app._get_current_object()
    if not app.config.get("SANDBOX_ENABLED"):
        return Markup("")
    key = (id(app), str(get_locale()), request.script_root)
    html = _CACHE.get(key)
    if html is None:
        # The template's own output, escaped as it was rendered.
        html = _CACHE[key] = Markup(render_template("wechat/pay_shim.html"))  # noqa: S704
    return html


def init_app(app: Flask) -> None:
    app.add_template_global(pay_shim, "pay_shim")
