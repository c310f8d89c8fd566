"""Fixtures for anything that talks to WeChat: a live sandbox and an app pointed at it.

A pytest plugin (listed in tests/conftest.py): use the fixtures from any test under tests/.
- ``sandbox`` (session): the standalone sandbox server (``wechat.sandbox.server``) running in
  a thread on a random loopback port; ``sandbox.api_base`` is its WECHAT_API_BASE.
- ``sandbox_url`` (session): that base URL, e.g. ``http://127.0.0.1:PORT/sandbox/wechat``.
- ``wx_app`` (session): an app built with ``make_config(WECHAT_API_BASE=sandbox_url)`` and
  served live on its own loopback port; its PUBLIC_URL is that server, so the sandbox's posts
  (callbacks, pay notifies) reach this app. ``wx_app.config["PUBLIC_URL"]`` is the root URL.
- ``wx_client``: a test client of ``wx_app``.
- ``wx_ctx``: an application context of ``wx_app`` for the test (gateway calls need it).
- ``wx_brand``: a brand (inside ``wx_ctx``) with official-account, mini-program and WeChat Pay
  APIv3 merchant settings, registered in the sandbox with its callback at ``wx_app``'s
  /wechat/<slug>/callback; WX_MCH_ID / WX_APIV3_KEY / ``merchant_keys()`` are the merchant's,
  and the sandbox's WeChat Pay public key is registered as the brand's.
- ``wx_consumer``: a sandbox consumer following ``wx_brand``'s official account:
  ``{"uid", "nickname", "unionid", "openid", "mp_openid"}``.
- ``recorder``: a tiny HTTP server recording what is posted to it (``recorder.url``,
  ``recorder.requests``: list of dicts with path, args, body, raw (bytes), headers;
  ``recorder.wait(n)``; ``recorder.answer`` is what it answers, e.g. ``("", 204)``).
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time

import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from core.db import db
from org import services as org_services
from tests import factories
from tests.support.apps import build_app, make_config
from wechat.sandbox import accounts, paystore, store
from wechat.sandbox.server import SandboxServer, create_sandbox_app

WX_MCH_ID = "1900000109"
WX_APIV3_KEY = "sandboxAPIv3key0123456789abcdefA"
_MERCHANT_KEYS: dict = {}


def merchant_keys() -> dict:
    """The test merchant's API certificate key pair (made once per test run)."""
    if not _MERCHANT_KEYS:
        _MERCHANT_KEYS.update(paystore.new_merchant_keys())
    return _MERCHANT_KEYS


def give_pay_settings(brand, mch_id: str = WX_MCH_ID) -> None:
    """Merchant settings for ``brand``, registered in the sandbox as WeChat Pay knows them."""
    keys = merchant_keys()
    platform = paystore.platform_public_key()
    org_services.update_brand_credentials(
        brand=brand,
        mch_id=mch_id,
        pay_apiv3_key=WX_APIV3_KEY,
        pay_private_key=keys["private_key"],
        pay_cert_serial_no=keys["cert_serial_no"],
        pay_public_key=platform["public_key"],
        pay_public_key_id=platform["public_key_id"],
    )
    paystore.register_merchant(
        mch_id,
        apiv3_key=WX_APIV3_KEY,
        cert_serial_no=keys["cert_serial_no"],
        merchant_public_key=keys["public_key"],
        appids=[brand.appid, brand.mp_appid],
    )


@pytest.fixture(scope="session")
def sandbox(app):
    server = SandboxServer(create_sandbox_app(make_config())).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sandbox_url(sandbox) -> str:
    return sandbox.api_base


@pytest.fixture(scope="session")
def wx_app(app, sandbox_url):
    application = build_app(WECHAT_API_BASE=sandbox_url, WECHAT_TIMEOUT=5)
    server = make_server("127.0.0.1", 0, application, threaded=True)
    application.config["PUBLIC_URL"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield application
    server.shutdown()
    server.server_close()
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def wx_client(wx_app):
    return wx_app.test_client()


@pytest.fixture
def wx_ctx(wx_app):
    with wx_app.app_context():
        yield wx_app
        db.session.remove()


def _aes_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()[:43]


@pytest.fixture
def wx_brand(wx_ctx):
    n = secrets.token_hex(5)
    creds = dict(
        appid=f"wxoa{n}",
        secret=f"secret-{n}",
        token=f"token{n}",
        aes_key=_aes_key(),
        mp_appid=f"wxmp{n}",
        mp_secret=f"mpsecret-{n}",
    )
    # Compatible mode: the tests post both plaintext and AES; tests/wechat/test_message_mode.py
    # holds the safe and plaintext modes to what they allow.
    brand = factories.brand(**creds, message_mode="compatible")
    give_pay_settings(brand)
    db.session.commit()
    public = wx_ctx.config["PUBLIC_URL"]
    accounts.register_account(
        brand.appid,
        brand.secret,
        token=brand.token,
        aes_key=brand.aes_key,
        callback_url=f"{public}/wechat/{brand.slug}/callback",
        mch_id=WX_MCH_ID,
        name=brand.name,
    )
    accounts.register_account(
        brand.mp_appid,
        brand.mp_secret,
        is_mini_program=True,
        mch_id=WX_MCH_ID,
        name=brand.name,
    )
    return brand


@pytest.fixture
def wx_consumer(wx_brand):
    consumer = store.create_consumer("小王")
    openid = store.openid_for(wx_brand.appid, consumer["uid"])
    store.set_following(wx_brand.appid, openid, True)
    return {
        **consumer,
        "openid": openid,
        "mp_openid": store.openid_for(wx_brand.mp_appid, consumer["uid"]),
    }


class Recorder:
    """An HTTP server that answers ``success`` and keeps every request it got."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answer = "success"
        web = Flask("recorder")

        @web.route("/", defaults={"path": ""}, methods=["GET", "POST"])
        @web.route("/<path:path>", methods=["GET", "POST"])
        def record(path):
            self.requests.append(
                {
                    "path": "/" + path,
                    "args": request.args.to_dict(),
                    "body": request.get_data(as_text=True),
                    "raw": request.get_data(),
                    "headers": dict(request.headers),
                }
            )
            return self.answer

        self.server = make_server("127.0.0.1", 0, web, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int = 1, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.requests

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    rec = Recorder()
    yield rec
    rec.stop()
