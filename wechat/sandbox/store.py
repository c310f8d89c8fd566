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
    consumer = {
        "uid": uid,
        "nickname": nickname,
        "unionid": "oU" + _digest("union", uid, 26),
        "created_at": int(time.time()),
    }
    r = get_redis()
    r.hset(_k("consumers"), uid, json.dumps(consumer, ensure_ascii=False))
    return consumer


def ensure_consumer(uid: str, nickname: str) -> dict:
    """The consumer ``uid``, created the first time (a demo's fixed people)."""
    consumer = {
        "uid": uid,
        "nickname": nickname,
        "unionid": "oU" + _digest("union", uid, 26),
        "created_at": int(time.time()),
    }
    r = get_redis()
    r.hsetnx(_k("consumers"), uid, json.dumps(consumer, ensure_ascii=False))
    return json.loads(r.hget(_k("consumers"), uid))


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
    """The consumer behind an openid of ``appid``: looked up in the account's openid index,
    which is (re)built in one pass when an openid is not in it yet (a push to a million
    followers would otherwise hash every consumer for every message)."""
    r = get_redis()
    index = _k("openid_index", appid)
    uid = r.hget(index, openid)
    if uid is not None:
        return get_consumer(uid.decode())
    found, mapping = None, {}
    for c in list_consumers():
        mine = openid_for(appid, c["uid"])
        mapping[mine] = c["uid"]
        if mine == openid:
            found = c
    if mapping:
        r.hset(index, mapping=mapping)
    return found


def create_consumers(nickname_prefix: str, n: int) -> list[dict]:
    """``n`` new consumers at once (load tests and benchmarks), in one pipeline."""
    now = int(time.time())
    made = []
    pipe = get_redis().pipeline(transaction=False)
    for i in range(n):
        uid = secrets.token_hex(8)
        consumer = {
            "uid": uid,
            "nickname": f"{nickname_prefix}{i}",
            "unionid": "oU" + _digest("union", uid, 26),
            "created_at": now,
        }
        pipe.hset(_k("consumers"), uid, json.dumps(consumer, ensure_ascii=False))
        made.append(consumer)
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()
    return made


def set_following_many(appid: str, openids: list[str]) -> None:
    """Make these openids followers of ``appid`` (load tests and benchmarks)."""
    now = int(time.time())
    r = get_redis()
    for start in range(0, len(openids), 5000):
        r.hset(_k("follows", appid), mapping={o: now for o in openids[start : start + 5000]})


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
    data = {
        "appid": appid,
        "scene": scene,
        "permanent": expire_seconds is None,
        "expires_at": None if expire_seconds is None else time.time() + expire_seconds,
    }
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


def inject_fault(
    endpoint: str,
    *,
    errcode: int | None = None,
    delay: float = 0,
    drop: bool = False,
    times: int = 1,
) -> None:
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


def count_call_and_take_fault(endpoint: str) -> dict | None:
    """``count_call`` and ``take_fault`` in one round trip (every sandbox API call does both)."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(_k("calls", endpoint))
    pipe.lpop(_k("faults", endpoint))
    _, raw = pipe.execute()
    return json.loads(raw) if raw else None


def count_call(endpoint: str) -> int:
    """Count a call of an endpoint (tests read how often WeChat was called)."""
    return int(get_redis().incr(_k("calls", endpoint)))


def calls(endpoint: str) -> int:
    return int(get_redis().get(_k("calls", endpoint)) or 0)


def reset_calls() -> None:
    r = get_redis()
    for k in r.scan_iter(_k("calls", "*")):
        r.delete(k)


# --- access tokens and tickets issued by the sandbox ------------------------------------------

# An old token stays valid this long after a new one is issued (as on WeChat).
TOKEN_GRACE = 300


def issue_token(appid: str, expires_in: int = 7200) -> str:
    """A new access_token for ``appid``; the previous one keeps working for 5 minutes."""
    r = get_redis()
    token = "sbx_" + secrets.token_urlsafe(48)
    now = time.time()
    previous = r.get(_k("token_of", appid))
    if previous:
        previous = previous.decode() if isinstance(previous, bytes) else previous
        raw = r.get(_k("token", previous))
        if raw:
            data = json.loads(raw)
            data["expires_at"] = min(data["expires_at"], now + TOKEN_GRACE)
            r.set(_k("token", previous), json.dumps(data), ex=86400)
    data = {"appid": appid, "expires_at": now + expires_in}
    r.set(_k("token", token), json.dumps(data), ex=expires_in + 86400)
    r.set(_k("token_of", appid), token, ex=expires_in + 86400)
    return token


def check_token(token: str | None) -> tuple[int, str | None]:
    """(errcode, appid) for an access_token: 0, 41001 missing, 40001 invalid, 42001 expired."""
    if not token:
        return 41001, None
    raw = get_redis().get(_k("token", token))
    if not raw:
        return 40001, None
    data = json.loads(raw)
    if data["expires_at"] < time.time():
        return 42001, data["appid"]
    return 0, data["appid"]


def expire_tokens(appid: str) -> None:
    """Make every token of ``appid`` expired now (to exercise 42001)."""
    r = get_redis()
    for k in r.scan_iter(_k("token", "*")):
        raw = r.get(k)
        if raw and json.loads(raw)["appid"] == appid:
            data = json.loads(raw)
            data["expires_at"] = time.time() - 1
            r.set(k, json.dumps(data), ex=86400)


# --- one-time codes (OAuth, wx.login, phone number) --------------------------------------------


def issue_code(kind: str, data: dict, ttl: int = 300) -> str:
    """A single-use code of ``kind`` carrying ``data``."""
    code = secrets.token_hex(16)
    get_redis().set(_k("code", kind, code), json.dumps({**data, "used": False}), ex=ttl)
    return code


def redeem_code(kind: str, code: str | None) -> tuple[int, dict | None]:
    """(0, data) the first time; (40163, None) when used before; (40029, None) if unknown."""
    if not code:
        return 40029, None
    r = get_redis()
    k = _k("code", kind, code)
    raw = r.get(k)
    if not raw:
        return 40029, None
    data = json.loads(raw)
    if data["used"]:
        return 40163, None
    # The first redeemer wins even when two requests race on the same code (marking the
    # code used again when another request won changes nothing).
    data["used"] = True
    pipe = r.pipeline(transaction=False)
    pipe.set(_k("code_used", kind, code), 1, nx=True, ex=86400)
    pipe.set(k, json.dumps(data), keepttl=True)
    first, _ = pipe.execute()
    if not first:
        return 40163, None
    return 0, data


# --- small per-appid documents: menus, cards, subscriptions, pay orders ---------------------


def put_doc(kind: str, appid: str, name: str, value: dict) -> None:
    get_redis().hset(_k("doc", kind, appid), name, json.dumps(value, ensure_ascii=False))


def get_doc(kind: str, appid: str, name: str) -> dict | None:
    raw = get_redis().hget(_k("doc", kind, appid), name)
    return json.loads(raw) if raw else None


def del_doc(kind: str, appid: str, name: str) -> bool:
    return bool(get_redis().hdel(_k("doc", kind, appid), name))


def list_docs(kind: str, appid: str) -> dict[str, dict]:
    out = {}
    for name, raw in get_redis().hgetall(_k("doc", kind, appid)).items():
        out[name.decode() if isinstance(name, bytes) else name] = json.loads(raw)
    return out


def get_menu(appid: str) -> dict | None:
    """The account's published custom menu ({"button": [...]}) or None."""
    return get_doc("menu", appid, "current")


def grant_subscription(appid: str, openid: str, template_id: str, times: int = 1) -> int:
    """The consumer accepted a one-time subscription to ``template_id`` (``times`` sends)."""
    return int(get_redis().hincrby(_k("subs", appid, openid), template_id, times))


def take_subscription(appid: str, openid: str, template_id: str) -> bool:
    """Use one accepted subscription; False when there is none left (WeChat: 43101)."""
    r = get_redis()
    left = r.hincrby(_k("subs", appid, openid), template_id, -1)
    if left < 0:
        r.hincrby(_k("subs", appid, openid), template_id, 1)
        return False
    return True


# --- callback posts made by the sandbox (for tests and the simulator) -----------------------


def record_push(appid: str, entry: dict) -> None:
    r = get_redis()
    r.rpush(_k("pushes", appid), json.dumps(entry, ensure_ascii=False))
    r.ltrim(_k("pushes", appid), -500, -1)


def pushes(appid: str) -> list[dict]:
    return [json.loads(v) for v in get_redis().lrange(_k("pushes", appid), 0, -1)]


def current_token(appid: str) -> str | None:
    """The latest access_token issued to ``appid``."""
    raw = get_redis().get(_k("token_of", appid))
    return raw.decode() if isinstance(raw, bytes) else raw


def token_expires_at(token: str) -> float:
    raw = get_redis().get(_k("token", token))
    return json.loads(raw)["expires_at"] if raw else 0.0


def next_id(name: str) -> int:
    """A sandbox-wide increasing number (message ids and the like)."""
    return int(get_redis().incr(_k("ids", name)))
