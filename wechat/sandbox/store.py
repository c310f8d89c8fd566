"""State of the WeChat sandbox, kept in Redis: consumers, follows, delivered messages,
QR codes, issued tokens and injected faults.

Everything is keyed by the official account's (or mini-program's) appid, the way WeChat
keeps it. A consumer is a person with one unionid; their openid differs per appid.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from core.redis import get_redis, key

_NS = "sandbox"


def _k(*parts: object) -> str:
    return key(None, _NS, *parts)


# --- consumers ------------------------------------------------------------------------------

def create_consumer(nickname: str) -> dict:
    """A new WeChat user of the sandbox."""
    uid = secrets.token_hex(8)
    consumer = {"uid": uid, "nickname": nickname, "unionid": "oU" + _digest("union", uid, 26),
                "created_at": int(time.time())}
    r = get_redis()
    r.hset(_k("consumers"), uid, json.dumps(consumer, ensure_ascii=False))
    return consumer


def list_consumers() -> list[dict]:
    rows = [json.loads(v) for v in get_redis().hvals(_k("consumers"))]
    return sorted(rows, key=lambda c: c["created_at"])


def get_consumer(uid: str) -> dict | None:
    raw = get_redis().hget(_k("consumers"), uid)
    return json.loads(raw) if raw else None


def openid_for(appid: str, uid: str) -> str:
    """The consumer's openid under one appid (stable, 28 characters like WeChat's)."""
    return "o" + _digest("openid", f"{appid}:{uid}", 27)


def consumer_by_openid(appid: str, openid: str) -> dict | None:
    for c in list_consumers():
        if openid_for(appid, c["uid"]) == openid:
            return c
    return None


def _digest(kind: str, value: str, length: int) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:length]


# --- follows --------------------------------------------------------------------------------

def set_following(appid: str, openid: str, following: bool) -> None:
    r = get_redis()
    if following:
        r.hset(_k("follows", appid), openid, int(time.time()))
    else:
        r.hdel(_k("follows", appid), openid)


def is_following(appid: str, openid: str) -> bool:
    return bool(get_redis().hexists(_k("follows", appid), openid))


def followed_at(appid: str, openid: str) -> int | None:
    raw = get_redis().hget(_k("follows", appid), openid)
    return int(raw) if raw else None


# --- messages delivered to a consumer -------------------------------------------------------

def record_message(appid: str, openid: str, message: dict) -> dict:
    """Keep a message in the consumer's chat.

    ``message`` has at least ``direction`` ("in": sent by the consumer, "out": sent to
    them), ``via`` ("passive", "customer_service", "template", "subscribe", "mass") and
    ``msgtype`` with the message's own fields. A sequence number and time are added.
    """
    r = get_redis()
    message = dict(message)
    message["seq"] = int(r.incr(_k("msgseq")))
    message.setdefault("at", time.time())
    r.rpush(_k("chat", appid, openid), json.dumps(message, ensure_ascii=False))
    return message


def messages(appid: str, openid: str, after: int = 0) -> list[dict]:
    rows = [json.loads(v) for v in get_redis().lrange(_k("chat", appid, openid), 0, -1)]
    return [m for m in rows if m["seq"] > after]


# --- QR codes --------------------------------------------------------------------------------

def save_qrcode(appid: str, ticket: str, scene: str, expire_seconds: int | None) -> None:
    data = {"appid": appid, "scene": scene, "permanent": expire_seconds is None,
            "expires_at": None if expire_seconds is None else time.time() + expire_seconds}
    get_redis().hset(_k("qrcodes"), ticket, json.dumps(data, ensure_ascii=False))


def get_qrcode(ticket: str) -> dict | None:
    raw = get_redis().hget(_k("qrcodes"), ticket)
    if not raw:
        return None
    data = json.loads(raw)
    if data["expires_at"] is not None and data["expires_at"] < time.time():
        return None
    return data


def list_qrcodes(appid: str) -> dict[str, dict]:
    out = {}
    for ticket, raw in get_redis().hgetall(_k("qrcodes")).items():
        data = json.loads(raw)
        if data["appid"] == appid:
            out[ticket.decode() if isinstance(ticket, bytes) else ticket] = data
    return out


# --- fault injection -------------------------------------------------------------------------

def inject_fault(endpoint: str, *, errcode: int | None = None, delay: float = 0,
                 drop: bool = False, times: int = 1) -> None:
    """Make the next ``times`` calls of ``endpoint`` (a path like ``/cgi-bin/token``) fail:
    answer ``errcode``, wait ``delay`` seconds first, or drop the connection."""
    spec = {"errcode": errcode, "delay": delay, "drop": drop}
    r = get_redis()
    pipe = r.pipeline()
    for _ in range(times):
        pipe.rpush(_k("faults", endpoint), json.dumps(spec))
    pipe.execute()


def take_fault(endpoint: str) -> dict | None:
    """The next injected fault of this endpoint, consumed atomically (None if none)."""
    raw = get_redis().lpop(_k("faults", endpoint))
    return json.loads(raw) if raw else None


def clear_faults() -> None:
    r = get_redis()
    for k in r.scan_iter(_k("faults", "*")):
        r.delete(k)


def count_call(endpoint: str) -> int:
    """Count a call of an endpoint (tests read how often WeChat was called)."""
    return int(get_redis().incr(_k("calls", endpoint)))


def calls(endpoint: str) -> int:
    return int(get_redis().get(_k("calls", endpoint)) or 0)
