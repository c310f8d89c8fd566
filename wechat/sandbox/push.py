"""What the sandbox posts to an account's callback: consumer messages and events.

Posts are built the way WeChat builds them: XML, AES-encrypted in safe mode with the
account's EncodingAESKey, ``signature`` and ``msg_signature`` in the query string. The
passive reply is decrypted, parsed and kept in the consumer's chat like WeChat shows it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from xml.sax.saxutils import escape

import requests
import xmltodict
from wechatpy.crypto import WeChatCrypto

from wechat.sandbox import accounts, store

log = logging.getLogger(__name__)
_PUSHING: set[threading.Thread] = set()  # events pushed later, not yet delivered
_PUSHING_LOCK = threading.Lock()

# What a member sees when the account's server fails to answer.
UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
CALLBACK_TIMEOUT = 5.0


def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def build_xml(fields: dict) -> str:
    """A WeChat message XML; numbers bare, text in CDATA (with ``]]>`` split safely)."""
    out = ["<xml>"]
    for name, value in fields.items():
        if isinstance(value, int):
            out.append(f"<{name}>{value}</{name}>")
        elif isinstance(value, dict):
            inner = build_xml(value)[len("<xml>") : -len("</xml>")]
            out.append(f"<{name}>{inner}</{name}>")
        else:
            text = str(value).replace("]]>", "]]]]><![CDATA[>")
            out.append(f"<{name}><![CDATA[{text}]]></{name}>")
    out.append("</xml>")
    return "".join(out)


def signed_request(account: dict, xml: str, openid: str | None) -> tuple[dict, str]:
    """The query string and body WeChat would post for ``xml`` to this account."""
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(5)
    token = account.get("token") or ""
    params = {"signature": _sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid:
        params["openid"] = openid
    if not account.get("aes_key"):
        return params, xml
    crypto = WeChatCrypto(token, account["aes_key"], account["appid"])
    encrypted = xmltodict.parse(crypto.encrypt_message(xml, nonce, timestamp))["xml"]["Encrypt"]
    params["encrypt_type"] = "aes"
    params["msg_signature"] = _sign(token, timestamp, nonce, encrypted)
    body = (
        f"<xml><ToUserName><![CDATA[{escape(account['original_id'])}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    return params, body


def parse_reply(account: dict, body: str) -> dict:
    """The passive reply as a dict ({} for ``success`` or an empty body)."""
    body = (body or "").strip()
    if body in ("", "success"):
        return {}
    data = xmltodict.parse(body)["xml"]
    if "Encrypt" in data and account.get("aes_key"):
        crypto = WeChatCrypto(account.get("token") or "", account["aes_key"], account["appid"])
        plain = crypto.decrypt_message(
            body, data.get("MsgSignature"), data.get("TimeStamp"), data.get("Nonce")
        )
        data = xmltodict.parse(plain)["xml"]
    return dict(data)


def post_to_callback(account: dict, fields: dict, openid: str | None) -> requests.Response:
    """POST one message or event to the account's callback, signed (and encrypted)."""
    url = account.get("callback_url")
    if not url:
        raise LookupError(f"account {account['appid']} has no callback URL")
    params, body = signed_request(account, build_xml(fields), openid)
    return requests.post(
        url,
        params=params,
        data=body.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=CALLBACK_TIMEOUT,
    )


def _inbound_record(fields: dict) -> dict:
    msgtype = fields.get("MsgType", "text")
    record = {"direction": "in", "via": "user", "msgtype": msgtype}
    for name, value in fields.items():
        if name not in ("ToUserName", "FromUserName", "CreateTime", "MsgType"):
            record[name[0].lower() + name[1:]] = value
    return record


def _reply_record(reply: dict) -> dict:
    record = {"direction": "out", "via": "passive", "msgtype": reply.get("MsgType", "text")}
    if "Content" in reply:
        record["content"] = reply["Content"]
    if "Articles" in reply:
        items = reply["Articles"].get("item") if reply["Articles"] else []
        record["articles"] = items if isinstance(items, list) else [items]
    for name in ("Image", "Voice", "Video", "Music"):
        if name in reply:
            record[name.lower()] = reply[name]
    return record


def deliver(appid: str, openid: str, xml_fields: dict) -> dict:
    """Send what a consumer did (a message or an event) to the account and return its reply.

    ``xml_fields`` holds the message's own fields (``MsgType``, ``Content``, ``Event``,
    ``EventKey`` ...); ToUserName, FromUserName, CreateTime and MsgId are filled in. Both the
    inbound message and the passive reply are kept in the consumer's chat. When the server
    fails, the reply is ``{"error": ...}`` and the member sees WeChat's "unavailable" notice.
    """
    account = accounts.get_account(appid)
    if account is None:
        raise LookupError(f"unknown sandbox account {appid}")
    fields = {
        "ToUserName": account["original_id"],
        "FromUserName": openid,
        "CreateTime": int(time.time()),
    }
    fields.update(xml_fields)
    if fields.get("MsgType", "text") != "event":
        fields.setdefault("MsgId", store.next_id("msgid") + 10**15)
    store.record_message(appid, openid, _inbound_record(fields))
    try:
        res = post_to_callback(account, fields, openid)
        if res.status_code != 200:
            raise RuntimeError(f"callback answered HTTP {res.status_code}")
        reply = parse_reply(account, res.text)
    except Exception as exc:  # WeChat shows the member a notice whatever went wrong
        log.info("sandbox delivery to %s failed: %s", appid, exc)
        store.record_message(
            appid,
            openid,
            {"direction": "out", "via": "system", "msgtype": "text", "content": UNAVAILABLE},
        )
        return {"error": str(exc)}
    if reply:
        store.record_message(appid, openid, _reply_record(reply))
    return reply


def follow(appid: str, openid: str, *, scene: str | None = None, ticket: str | None = None) -> dict:
    """The consumer follows the account (from a parametric QR code when ``scene`` is given)."""
    store.set_following(appid, openid, True)
    fields: dict = {"MsgType": "event", "Event": "subscribe"}
    if scene is not None:
        fields["EventKey"] = f"qrscene_{scene}"
        if ticket:
            fields["Ticket"] = ticket
    return deliver(appid, openid, fields)


def unfollow(appid: str, openid: str) -> dict:
    """The consumer unfollows the account."""
    store.set_following(appid, openid, False)
    return deliver(appid, openid, {"MsgType": "event", "Event": "unsubscribe"})


def scan(openid_or_uid: str, ticket: str) -> dict:
    """The consumer scans a parametric QR code: subscribe with qrscene_ or SCAN if following."""
    qr = store.get_qrcode(ticket)
    if qr is None:
        raise LookupError("unknown or expired QR code")
    appid = qr["appid"]
    openid = openid_or_uid
    if store.get_consumer(openid_or_uid) is not None:
        openid = store.openid_for(appid, openid_or_uid)
    if store.is_following(appid, openid):
        return deliver(
            appid,
            openid,
            {"MsgType": "event", "Event": "SCAN", "EventKey": qr["scene"], "Ticket": ticket},
        )
    return follow(appid, openid, scene=qr["scene"], ticket=ticket)


def push_event_later(appid: str, openid: str, fields: dict, *, delay: float = 0.05) -> None:
    """Post an event to the account from a background thread, as WeChat does for reports."""
    account = accounts.get_account(appid)
    if account is None or not account.get("callback_url"):
        return
    full = {
        "ToUserName": account["original_id"],
        "FromUserName": openid,
        "CreateTime": int(time.time()),
        **fields,
    }
    store.record_push(appid, {"openid": openid, "fields": full, "at": time.time()})

    def run() -> None:
        try:
            time.sleep(delay)
            try:
                res = post_to_callback(account, full, openid)
                status = res.status_code
            except requests.RequestException as exc:
                status = f"error: {type(exc).__name__}"
            log.debug("sandbox pushed %s to %s: %s", fields.get("Event"), appid, status)
        finally:
            with _PUSHING_LOCK:
                _PUSHING.discard(threading.current_thread())

    thread = threading.Thread(target=run, name="sandbox-push", daemon=True)
    with _PUSHING_LOCK:
        _PUSHING.add(thread)
    thread.start()


def wait_pushes(timeout: float = 30.0) -> None:
    """Wait until the events pushed later so far have reached the account (or failed): a
    test's end waits for them before it empties the database they write to."""
    deadline = time.monotonic() + timeout
    with _PUSHING_LOCK:
        threads = list(_PUSHING)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
