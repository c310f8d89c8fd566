"""The sandbox itself: WeChat's formats and error codes, faults, and delivery to a callback."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import requests
import xmltodict
from flask import Flask, request
from wechatpy.crypto import WeChatCrypto
from werkzeug.serving import make_server

from wechat.sandbox import accounts, push, store


def _token(sandbox_url, brand):
    return requests.get(
        sandbox_url + "/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": brand.appid,
            "secret": brand.secret,
        },
        timeout=5,
    ).json()


def test_token_checks_appid_and_secret(sandbox_url, wx_brand):
    good = _token(sandbox_url, wx_brand)
    assert good["expires_in"] == 7200 and good["access_token"]
    bad_secret = requests.get(
        sandbox_url + "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": wx_brand.appid, "secret": "nope"},
        timeout=5,
    ).json()
    assert bad_secret["errcode"] == 40125
    bad_appid = requests.get(
        sandbox_url + "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": "wxunknown", "secret": "x"},
        timeout=5,
    ).json()
    assert bad_appid["errcode"] == 40013


def test_stable_token_returns_the_same_token_until_forced(sandbox_url, wx_brand):
    body = {"grant_type": "client_credential", "appid": wx_brand.appid, "secret": wx_brand.secret}
    first = requests.post(sandbox_url + "/cgi-bin/stable_token", json=body, timeout=5).json()
    second = requests.post(sandbox_url + "/cgi-bin/stable_token", json=body, timeout=5).json()
    forced = requests.post(
        sandbox_url + "/cgi-bin/stable_token", json={**body, "force_refresh": True}, timeout=5
    ).json()
    assert first["access_token"] == second["access_token"] != forced["access_token"]
    wrong = requests.post(
        sandbox_url + "/cgi-bin/stable_token", json={**body, "secret": "bad"}, timeout=5
    ).json()
    assert wrong["errcode"] == 40125


def test_access_token_is_checked_on_every_call(sandbox_url, wx_brand, wx_consumer):
    url = sandbox_url + "/cgi-bin/user/info"
    openid = wx_consumer["openid"]
    assert requests.get(url, params={"openid": openid}, timeout=5).json()["errcode"] == 41001
    assert (
        requests.get(url, params={"openid": openid, "access_token": "forged"}, timeout=5).json()[
            "errcode"
        ]
        == 40001
    )
    old = _token(sandbox_url, wx_brand)["access_token"]
    assert (
        requests.get(url, params={"openid": openid, "access_token": old}, timeout=5).json()[
            "subscribe"
        ]
        == 1
    )
    # A new token leaves the old one valid for a grace period, like WeChat.
    _token(sandbox_url, wx_brand)
    assert (
        requests.get(url, params={"openid": openid, "access_token": old}, timeout=5).json()[
            "subscribe"
        ]
        == 1
    )
    store.expire_tokens(wx_brand.appid)
    assert (
        requests.get(url, params={"openid": openid, "access_token": old}, timeout=5).json()[
            "errcode"
        ]
        == 42001
    )


def test_faults_injected_over_http_apply_then_clear(sandbox_url, wx_brand):
    res = requests.post(
        sandbox_url + "/_sandbox/faults",
        json={"endpoint": "/cgi-bin/token", "errcode": 45009, "times": 2},
        timeout=5,
    )
    assert res.json() == {"ok": True}
    assert _token(sandbox_url, wx_brand)["errcode"] == 45009
    assert _token(sandbox_url, wx_brand)["errcode"] == 45009
    assert "access_token" in _token(sandbox_url, wx_brand)
    calls = requests.get(
        sandbox_url + "/_sandbox/calls", params={"endpoint": "/cgi-bin/token"}, timeout=5
    ).json()
    assert calls["calls"] == 3

    requests.post(
        sandbox_url + "/_sandbox/faults",
        json={"endpoint": "/cgi-bin/token", "errcode": -1, "times": 5},
        timeout=5,
    )
    requests.delete(sandbox_url + "/_sandbox/faults", timeout=5)
    assert "access_token" in _token(sandbox_url, wx_brand)
    bad = requests.post(sandbox_url + "/_sandbox/faults", json={"endpoint": "x"}, timeout=5)
    assert bad.status_code == 400


def test_delay_and_drop_faults(sandbox_url, wx_brand):
    store.inject_fault("/cgi-bin/token", delay=0.3)
    started = time.monotonic()
    assert "access_token" in _token(sandbox_url, wx_brand)
    assert time.monotonic() - started >= 0.3
    store.inject_fault("/cgi-bin/token", drop=True)
    with pytest.raises(requests.ConnectionError):
        _token(sandbox_url, wx_brand)


def test_the_sandbox_is_mounted_in_the_app_and_csrf_exempt(wx_client, wx_brand):
    res = wx_client.post(
        "/sandbox/wechat/cgi-bin/stable_token",
        json={
            "grant_type": "client_credential",
            "appid": wx_brand.appid,
            "secret": wx_brand.secret,
        },
    )
    assert res.status_code == 200 and res.get_json()["access_token"]


def test_accounts_are_seeded_from_the_brand_table(wx_ctx):
    from tests import factories

    brand = factories.brand(
        appid="wxseeded00000001",
        secret="seeded-secret",
        token="seedtoken",
        mp_appid="wxseededmp000001",
        mp_secret="mp-s",
    )
    account = accounts.get_account("wxseeded00000001")
    assert account["secret"] == "seeded-secret" and account["token"] == "seedtoken"
    assert account["callback_url"].endswith(f"/wechat/{brand.slug}/callback")
    mp = accounts.get_account("wxseededmp000001")
    assert mp["is_mini_program"] is True and mp["secret"] == "mp-s"
    assert accounts.get_account("wxnobody") is None


class EchoCallback:
    """An account server written from the protocol: checks, decrypts, replies encrypted."""

    def __init__(self, brand, broken: bool = False):
        self.seen: list[dict] = []
        web = Flask("echo")
        crypto = WeChatCrypto(brand.token, brand.aes_key, brand.appid)

        @web.post("/cb")
        def callback():
            a = request.args
            expected = hashlib.sha1(
                "".join(sorted([brand.token, a["timestamp"], a["nonce"]])).encode()
            ).hexdigest()
            if a["signature"] != expected:
                return "bad signature", 403
            xml = crypto.decrypt_message(
                request.get_data(as_text=True), a["msg_signature"], a["timestamp"], a["nonce"]
            )
            msg = xmltodict.parse(xml)["xml"]
            self.seen.append(msg)
            if broken:
                return "oops", 500
            if msg["MsgType"] == "event" and msg["Event"] != "subscribe":
                return "success"
            text = "欢迎" if msg["MsgType"] == "event" else "echo: " + msg["Content"]
            text = text.replace("]]>", "]]]]><![CDATA[>")  # as the protocol requires
            reply = (
                f"<xml><ToUserName><![CDATA[{msg['FromUserName']}]]></ToUserName>"
                f"<FromUserName><![CDATA[{msg['ToUserName']}]]></FromUserName>"
                f"<CreateTime>{int(time.time())}</CreateTime>"
                f"<MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{text}]]></Content></xml>"
            )
            return crypto.encrypt_message(reply, a["nonce"], a["timestamp"])

        self.server = make_server("127.0.0.1", 0, web, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/cb"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def echo(wx_brand):
    server = EchoCallback(wx_brand)
    accounts.update_account(wx_brand.appid, callback_url=server.url)
    yield server
    server.server.shutdown()


def test_deliver_posts_encrypted_and_keeps_both_sides_of_the_chat(wx_brand, wx_consumer, echo):
    reply = push.deliver(
        wx_brand.appid, wx_consumer["openid"], {"MsgType": "text", "Content": "积分]]>查询"}
    )

    assert reply["MsgType"] == "text" and reply["Content"] == "echo: 积分]]>查询"
    [seen] = echo.seen
    assert seen["FromUserName"] == wx_consumer["openid"]
    assert seen["ToUserName"] == accounts.original_id(wx_brand.appid)
    assert int(seen["MsgId"]) > 0
    chat = store.messages(wx_brand.appid, wx_consumer["openid"])
    assert [(m["direction"], m.get("content")) for m in chat] == [
        ("in", "积分]]>查询"),
        ("out", "echo: 积分]]>查询"),
    ]


def test_follow_scan_and_unfollow_send_the_right_events(wx_brand, echo):
    consumer = store.create_consumer("小李")
    openid = store.openid_for(wx_brand.appid, consumer["uid"])
    store.save_qrcode(wx_brand.appid, "T1", "store:SH001", 600)

    assert push.scan(consumer["uid"], "T1")["Content"] == "欢迎"
    assert store.is_following(wx_brand.appid, openid)
    assert push.scan(consumer["uid"], "T1") == {}
    push.unfollow(wx_brand.appid, openid)

    events = [(m["Event"], m.get("EventKey")) for m in echo.seen]
    assert events == [
        ("subscribe", "qrscene_store:SH001"),
        ("SCAN", "store:SH001"),
        ("unsubscribe", None),
    ]
    assert not store.is_following(wx_brand.appid, openid)


def test_a_failing_account_shows_wechats_notice(wx_brand, wx_consumer):
    broken = EchoCallback(wx_brand, broken=True)
    accounts.update_account(wx_brand.appid, callback_url=broken.url)
    try:
        reply = push.deliver(
            wx_brand.appid, wx_consumer["openid"], {"MsgType": "text", "Content": "hi"}
        )
    finally:
        broken.server.shutdown()
    assert "error" in reply
    last = store.messages(wx_brand.appid, wx_consumer["openid"])[-1]
    assert last["via"] == "system" and last["content"] == push.UNAVAILABLE
