"""SMS verification codes for the H5 activation, through a pluggable sender.

Codes are 6 digits, valid 5 minutes, single-use; only a hash is kept (in Redis). Sending is
rate-limited per phone (one a minute, five an hour) and per client IP (twenty an hour);
a code survives at most five wrong tries, then a new one must be requested.

The sender is chosen by the ``SMS_SENDER`` setting: ``sandbox`` (default; keeps the last
code per phone in Redis so that the phone simulator, ``/sandbox/sms`` and tests can read
it) or ``module:Class`` of a real provider implementing ``SmsSender``::

    class AliyunSender:
        def send(self, *, brand_id: int, phone: str, code: str, text: str) -> None:
            ...  # call the provider; raise SmsError when it refuses

A real sender sends only between 08:00 and 21:00 for marketing; verification codes are
transactional and go at any hour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib
import json
import secrets
import time
from typing import Protocol

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l

from core import ratelimit
from core.db import db
from core.errors import NotFound, RateLimited, ValidationError
from core.redis import get_redis, key
from members.activation.services import check_phone
from org.models import Brand

CODE_TTL = 300
MAX_WRONG = 5
PHONE_LIMITS = ((1, 60), (5, 3600))
IP_LIMIT = (20, 3600)


class SmsError(RuntimeError):
    """The provider did not accept the message."""


class SmsSender(Protocol):
    def send(self, *, brand_id: int, phone: str, code: str, text: str) -> None: ...


class SandboxSender:
    """Keeps the last code per phone in Redis instead of sending it (development, tests)."""

    def send(self, *, brand_id: int, phone: str, code: str, text: str) -> None:
        get_redis().set(
            key(None, "sandbox", "sms", phone),
            json.dumps(
                {
                    "brand_id": brand_id,
                    "phone": phone,
                    "code": code,
                    "text": text,
                    "at": time.time(),
                },
                ensure_ascii=False,
            ),
            ex=3600,
        )


def sandbox_last(phone: str) -> dict | None:
    """The last message the sandbox sender 'sent' to ``phone``."""
    raw = get_redis().get(key(None, "sandbox", "sms", phone))
    return json.loads(raw) if raw else None


def uses_sandbox_sender(app: Flask) -> bool:
    """Whether codes are kept by the sandbox sender instead of being sent."""
    return (app.config.get("SMS_SENDER") or "sandbox") == "sandbox"


def get_sender() -> SmsSender:
    if uses_sandbox_sender(current_app):
        return SandboxSender()
    spec = current_app.config["SMS_SENDER"]
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)()


def _code_key(brand_id: int, phone: str) -> str:
    return key(brand_id, "sms-code", phone)


def _digest(brand_id: int, phone: str, code: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"{brand_id}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(*, brand_id: int, phone: str, ip: str, brand_name: str) -> str:
    """Send a new code to ``phone``; returns the normalised phone. RateLimited when too often."""
    phone = check_phone(phone)
    ip_limit = int(current_app.config.get("SMS_IP_LIMIT") or IP_LIMIT[0])
    checks = [(f"sms-phone-{window}", phone, limit, window) for limit, window in PHONE_LIMITS]
    checks.append(("sms-ip", ip or "-", ip_limit, IP_LIMIT[1]))
    if ratelimit.hit_each(brand_id, checks):
        raise RateLimited(_l("too many codes requested, please wait"), field="phone")
    code = f"{secrets.randbelow(10**6):06d}"
    get_redis().set(
        _code_key(brand_id, phone),
        json.dumps({"h": _digest(brand_id, phone, code), "wrong": 0}),
        ex=CODE_TTL,
    )
    text = f"【{brand_name}】验证码 {code}，5 分钟内有效，请勿告诉他人。"
    get_sender().send(brand_id=brand_id, phone=phone, code=code, text=text)
    return phone


# Check the code and burn it in one step, so that two requests cannot both use it.
_CHECK = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local data = cjson.decode(raw)
if data['h'] == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
data['wrong'] = data['wrong'] + 1
if data['wrong'] >= tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) return -1 end
redis.call('SET', KEYS[1], cjson.encode(data), 'KEEPTTL')
return -2
"""


def check_code(*, brand_id: int, phone: str, code: str) -> str:
    """Verify and consume the code sent to ``phone``; returns the phone or raises."""
    phone = check_phone(phone)
    code = (code or "").strip()
    if len(code) != 6 or not code.isdigit():
        raise ValidationError(_l("the code has 6 digits"), field="code")
    k = _code_key(brand_id, phone)
    digest = _digest(brand_id, phone, code)
    r = get_redis()
    try:
        result = int(r.eval(_CHECK, 1, k, digest, MAX_WRONG))
    except Exception:  # noqa: BLE001 - the in-process fake Redis has no Lua
        result = _check_without_lua(r, k, digest)
    if result == 1:
        return phone
    if result == 0:
        raise ValidationError(
            _l("the code has expired or was used, request a new one"), field="code"
        )
    if result == -1:
        raise RateLimited(_l("too many wrong codes, request a new one"), field="code")
    raise ValidationError(_l("wrong code"), field="code")


def _check_without_lua(r, k: str, digest: str) -> int:
    raw = r.get(k)
    if not raw:
        return 0
    data = json.loads(raw)
    if hmac.compare_digest(data["h"], digest):
        return 1 if r.delete(k) else 0
    data["wrong"] += 1
    if data["wrong"] >= MAX_WRONG:
        r.delete(k)
        return -1
    r.set(k, json.dumps(data), keepttl=True)
    return -2


sandbox_bp = Blueprint("members_sandbox_sms", __name__, url_prefix="/sandbox/sms")


@sandbox_bp.get("")
def sandbox_inbox():
    """The last SMS the sandbox sender kept for ``?phone=`` (development only): JSON for
    programs, a phone's messages screen for a browser."""
    phone = (request.args.get("phone") or "").strip()
    last = sandbox_last(phone) if phone else None
    wants = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if request.args.get("format") != "json" and wants == "text/html":
        return _inbox_page(phone, last), 200 if last or not phone else 404
    if last is None:
        raise NotFound(_l("no message for this phone"), field="phone")
    return jsonify(last)


def _inbox_page(phone: str, last: dict | None) -> str:
    ctx: dict = {"phone": phone, "message": last}
    if last:
        brand = db.session.get(Brand, last.get("brand_id"))
        when = dt.datetime.fromtimestamp(last["at"], dt.UTC)
        ctx["sent_at"] = (brand.local(when) if brand else when).strftime("%Y-%m-%d %H:%M")
        ctx["before"], _, ctx["after"] = last["text"].partition(last["code"])
    return render_template("members/sandbox/sms.html", **ctx)
