"""The WeChat sandbox: a fake WeChat API (and, in ``phone``, a phone simulator).

``init_app`` mounts the fake API at /sandbox/wechat (WeChat Pay under /sandbox/wechat/pay),
which is where the default WECHAT_API_BASE points. ``wechat.sandbox.server`` runs the same
API as a server of its own for tests. Python entry points for simulators and tests:
``accounts.register_account``, ``push.deliver/follow/unfollow/scan``,
``api_mp.issue_js_code/issue_phone_code``, ``oauth.authorize_code``, WeChat Pay's
``paystore`` (``register_merchant``, ``platform_public_key``, ``set_delivery``,
``inject_system_error``) and ``paynotify`` (``pay_order``, ``complete_refund``,
``redeliver``), ``store.inject_fault``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from wechat.sandbox import api, api_mp, control, oauth, pay, phone  # noqa: F401 - routes

    app.register_blueprint(api.bp)
    phone.init_phone(app)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(api.bp)
