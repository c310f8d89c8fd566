"""Official accounts and mini-programs known to the sandbox (appid -> credentials).

WeChat knows each account's secret, its server token, EncodingAESKey and callback URL; the
sandbox keeps the same in Redis. Inside the app an account is seeded lazily from the Brand
table the first time its appid is seen, so `make run` needs no setup.
"""

from __future__ import annotations

import hashlib
import json
import logging

from flask import current_app, has_app_context

from core.redis import get_redis, key

log = logging.getLogger(__name__)

_FIELDS = (
    "appid",
    "secret",
    "token",
    "aes_key",
    "callback_url",
    "is_mini_program",
    "mch_id",
    "original_id",
    "name",
)


def _k(*parts: object) -> str:
    return key(None, "sandbox", *parts)


def original_id(appid: str) -> str:
    """The account's gh_ id (ToUserName of what WeChat posts)."""
    return "gh_" + hashlib.sha256(appid.encode()).hexdigest()[:12]


def register_account(
    appid: str,
    secret: str,
    *,
    token: str | None = None,
    aes_key: str | None = None,
    callback_url: str | None = None,
    is_mini_program: bool = False,
    mch_id: str | None = None,
    name: str | None = None,
) -> dict:
    """Create or replace an account in the sandbox."""
    account = {
        "appid": appid,
        "secret": secret,
        "token": token,
        "aes_key": aes_key,
        "callback_url": callback_url,
        "is_mini_program": is_mini_program,
        "mch_id": mch_id,
        "original_id": original_id(appid),
        "name": name or appid,
    }
    get_redis().hset(_k("accounts"), appid, json.dumps(account))
    return account


def update_account(appid: str, **changes: object) -> dict:
    """Change some fields of a known account (e.g. point its callback at a test server)."""
    account = get_account(appid)
    if account is None:
        raise LookupError(f"unknown sandbox account {appid}")
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown account fields {sorted(unknown)}")
    account.update(changes)
    get_redis().hset(_k("accounts"), appid, json.dumps(account))
    return account


def get_account(appid: str | None) -> dict | None:
    """The account of ``appid``, seeded from the Brand table when the app has one."""
    if not appid:
        return None
    raw = get_redis().hget(_k("accounts"), appid)
    if raw:
        return json.loads(raw)
    return _seed_from_brand(appid=appid)


def list_accounts() -> list[dict]:
    return [json.loads(v) for v in get_redis().hvals(_k("accounts"))]


def _seed_from_brand(*, appid: str) -> dict | None:
    if not has_app_context() or not current_app.config.get("SANDBOX_SEED_FROM_BRANDS", True):
        return None
    if "sqlalchemy" not in current_app.extensions:
        return None
    from sqlalchemy import or_, select

    from core.db import db
    from org.models import Brand

    try:
        cond = or_(Brand.appid == appid, Brand.mp_appid == appid)
        brand = db.session.execute(select(Brand).where(cond).limit(1)).scalar_one_or_none()
    except Exception:  # the sandbox must answer even when the app's database is not set up
        log.warning("sandbox could not read brands", exc_info=True)
        db.session.rollback()
        return None
    if brand is None:
        return None
    public = current_app.config.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
    if appid == brand.mp_appid:
        return register_account(
            appid,
            brand.mp_secret or "",
            is_mini_program=True,
            mch_id=brand.mch_id,
            name=brand.name,
        )
    return register_account(
        brand.appid,
        brand.secret or "",
        token=brand.token,
        aes_key=brand.aes_key,
        callback_url=f"{public}/wechat/{brand.slug}/callback",
        mch_id=brand.mch_id,
        name=brand.name,
    )
