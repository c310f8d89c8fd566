"""WeChat: the only package that imports wechatpy.

``gateway`` talks to the WeChat API; ``callback`` receives what WeChat posts and routes it
to handlers that other packages register; ``sandbox`` fakes WeChat for development, the
demo and the tests.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from wechat import callback, console, sandbox

    callback.init_app(app)
    console.init_app(app)
    if app.config.get("SANDBOX_ENABLED"):
        sandbox.init_app(app)
