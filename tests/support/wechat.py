"""Signed WeChat posts for the callback: a stand-in for WeChat's servers that signs and
encrypts requests (``FakeWeChat``, ``sign``, ``aes_encrypt``, ``text_xml``, ``event_xml``), an
independent decryptor of our replies, and a brand answering on these credentials
(``answering_brand``). The hostile payloads are in tests/wechat/test_callback_hostile.py.

The AES code here is written on ``cryptography`` directly, independently of wechat.crypto
and of wechatpy, so that a bug shared by both sides cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
import xml.etree.ElementTree as ET  # noqa: N817
from urllib.parse import urlencode

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TOKEN = "cbtoken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
APPID = "wxcallback000001"
OA_ID = "gh_0123456789ab"


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def aes_encrypt(plaintext: bytes, aes_key: str, appid: str) -> str:
    key = base64.b64decode(aes_key + "=")
    data = os.urandom(16) + struct.pack(">I", len(plaintext)) + plaintext + appid.encode()
    pad = 32 - len(data) % 32
    data += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def aes_decrypt(ciphertext: str, aes_key: str) -> tuple[bytes, bytes]:
    """(message, appid) inside a ciphertext."""
    key = base64.b64decode(aes_key + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    data = dec.update(base64.b64decode(ciphertext)) + dec.finalize()
    data = data[: -data[-1]]
    (length,) = struct.unpack(">I", data[16:20])
    return data[20 : 20 + length], data[20 + length :]


def text_xml(
    openid: str,
    content: str,
    msg_id: int | str,
    *,
    create_time: int | None = None,
    cdata: bool = True,
) -> str:
    body = f"<![CDATA[{content}]]>" if cdata else content
    return (
        f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content>{body}</Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(
    openid: str,
    event: str,
    event_key: str | None = None,
    *,
    create_time: int | None = None,
    extra: str = "",
) -> str:
    key = f"<EventKey><![CDATA[{event_key}]]></EventKey>" if event_key is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"{key}{extra}</xml>"
    )


class FakeWeChat:
    """Posts to the callback the way WeChat's servers do."""

    def __init__(
        self, client, slug: str, *, token: str = TOKEN, aes_key: str = AES_KEY, appid: str = APPID
    ):
        self.client, self.slug = client, slug
        self.token, self.aes_key, self.appid = token, aes_key, appid

    @property
    def path(self) -> str:
        return f"/wechat/{self.slug}/callback"

    def query(self, *, extra: dict | None = None, signature: str | None = None) -> str:
        ts, nonce = str(int(time.time())), os.urandom(4).hex()
        q = {
            "signature": signature or sign(self.token, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "openid": "ignored",
        }
        q.update(extra or {})
        return urlencode(q)

    def echo(self, echostr: str, *, signature: str | None = None):
        query = self.query(extra={"echostr": echostr}, signature=signature)
        return self.client.get(f"{self.path}?{query}")

    def post_plain(self, xml: str | bytes, *, signature: str | None = None, headers=None):
        query = self.query(signature=signature)
        return self.client.post(
            f"{self.path}?{query}", data=xml, content_type="text/xml", headers=headers or {}
        )

    def post_aes(
        self,
        xml: str,
        *,
        aes_key: str | None = None,
        appid: str | None = None,
        compatible: bool = False,
        encrypt: str | None = None,
        msg_signature: str | None = None,
        envelope_extra: str = "",
    ):
        """Post ``xml`` in safe mode (or compatible mode); ``envelope_extra`` is put at the
        end of the envelope (a second ``<Encrypt>``, say)."""
        encrypt = encrypt or aes_encrypt(xml.encode(), aes_key or self.aes_key, appid or self.appid)
        ts, nonce = str(int(time.time())), os.urandom(4).hex()
        q = {
            "signature": sign(self.token, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "openid": "ignored",
            "encrypt_type": "aes",
            "msg_signature": msg_signature or sign(self.token, ts, nonce, encrypt),
        }
        if compatible:
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        else:
            body = (
                f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            )
        body = body.replace("</xml>", envelope_extra + "</xml>")
        return self.client.post(f"{self.path}?{urlencode(q)}", data=body, content_type="text/xml")

    def open_reply(self, response, *, aes_key: str | None = None) -> ET.Element:
        """Check the envelope's signature and appid, and return the decrypted reply."""
        envelope = ET.fromstring(response.data)
        encrypt = envelope.findtext("Encrypt")
        assert envelope.findtext("MsgSignature") == sign(
            self.token, envelope.findtext("TimeStamp"), envelope.findtext("Nonce"), encrypt
        )
        message, appid = aes_decrypt(encrypt, aes_key or self.aes_key)
        assert appid == self.appid.encode()
        return ET.fromstring(message)


def answering_brand(default_reply: str = "收到", *, greeting: str = "", aes_key: str = AES_KEY):
    """A brand with the callback credentials above (in compatible mode) whose chatbot answers
    every message with ``default_reply`` and a follow with ``greeting`` (committed)."""
    from core.db import db
    from core.tenancy import use_brand
    from tests import factories
    from wechat import chatbot

    b = factories.brand(appid=APPID, token=TOKEN, aes_key=aes_key, message_mode="compatible")
    with use_brand(b.id):
        chatbot.save_replies(greeting=greeting, default_reply=default_reply)
        db.session.commit()
    return b
