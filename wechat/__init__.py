"""WeChat: the only package that imports wechatpy.

Outbound: ``gateway`` is what domains call (one function per WeChat API), over ``client``
(wechatpy clients per brand, the shared access token, counters) and ``pay``. Inbound:
``callback`` answers what WeChat posts (``wire``: request, strict XML, answer, WSGI front;
``brand_cache``: each brand cached per process, also for member pages and the
mini-program API; ``callback_scripts``: the retry key in Redis;
``inbound``: the delivery log) and hands messages to ``router``, where other packages
register handlers (``events``: typed subscribe-message events). ``sandbox`` fakes WeChat for
development, the demo and the tests; only ``app.py`` mounts it (no product module imports it).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from wechat import callback, labels, pay_shim, views_console  # noqa: F401 - labels: job names

    callback.init_app(app)
    views_console.init_app(app)
    pay_shim.init_app(app)
