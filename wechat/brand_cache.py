"""Each brand as the per-request paths need it, cached in the process for a few seconds.

Every WeChat callback, member-center page (``/m/<slug>/``) and mini-program API request
(``/api/mp/<slug>/``) starts from its brand; loading it through the ORM (and decrypting its
secrets) cost more CPU than most of what those requests do. The active brands are kept here
per slug for ``TTL`` seconds (id, slug, name, time zone, appids, the app secret, the
callback's token and EncodingAESKeys with the AES keys already prepared); an inactive or
unknown slug is not cached.

- any committed change of a ``Brand`` row (name, time zone, new token, EncodingAESKey, appid,
  deactivation), whichever process or command makes it, clears the brand's generation
  marker in Redis, which makes every process reload the brand on its next request:
  member pages and the mini-program API read the marker on every request
  (``current(slug)``: one HGET, no database); the callback reads it in the round trip that
  sets its retry key, and a request whose signature or ciphertext fails with the cached
  keys checks the marker first, so WeChat's first message (or URL check) with a new token or
  key is accepted at once. Only when that Redis write fails does a change wait for ``TTL``;
- during an EncodingAESKey rotation the previous key, which the brand keeps, still decrypts.

Redis keeps, per brand, a hash ``wmb:{b<id>}:wx-cb`` with the generation marker ``gen`` and
the chatbot's revision ``rev``. A generation other than the one cached (a brand change, Redis
flushed) reloads the brand from the database; a new chatbot revision, written after every
committed chatbot edit, makes the chatbot reload its rules at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time
import zoneinfo
from collections.abc import Callable

import redis
from flask import g, has_app_context
from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, object_session

from core.db import db, savepoint_event
from core.redis import get_redis, key
from org.models import DEFAULT_TZ, Brand
from wechat.crypto import CryptoError, MessageCrypto
from wechat.models import ChatbotSettings

log = logging.getLogger(__name__)

TTL = 15.0
_CHANGED = "wmb_brands_changed"

_QUERY = (
    select(
        Brand.id,
        Brand.slug,
        Brand.name,
        Brand.timezone,
        Brand.appid,
        Brand.secret,
        Brand.mp_appid,
        Brand.token,
        Brand.aes_key,
        Brand.previous_aes_key,
        Brand.message_mode,
        ChatbotSettings.rev,
    )
    .outerjoin(ChatbotSettings, ChatbotSettings.brand_id == Brand.id)
    .where(Brand.slug == bindparam("slug"), Brand.active.is_(True))
)


@dataclasses.dataclass(frozen=True, slots=True)
class BrandKeys:
    """An active brand as cached: what member pages show (``name``, ``slug``, ``tz``) and
    what the callback and WeChat sign-in need; ``cryptos``: current then previous key (a
    CryptoError in place of a key that is not a valid EncodingAESKey)."""

    id: int
    slug: str
    name: str
    timezone: str
    appid: str
    secret: str
    mp_appid: str
    token: str
    aes_keys: tuple[str, ...]
    message_mode: str
    cryptos: tuple[MessageCrypto | CryptoError, ...]
    db_rev: str | None
    gen: str
    expires: float
    tz: zoneinfo.ZoneInfo
    active: bool = True

    def local(self, when: dt.datetime) -> dt.datetime:
        """A UTC timestamp in the brand's time zone."""
        return when.astimezone(self.tz)

    def same_credentials(self, other: BrandKeys) -> bool:
        return (self.id, self.appid, self.token, self.aes_keys, self.message_mode) == (
            other.id,
            other.appid,
            other.token,
            other.aes_keys,
            other.message_mode,
        )

    def chatbot_rev(self, redis_rev: bytes | None) -> str | None:
        """The revision the chatbot caches its rules by (None: the brand has no chatbot)."""
        if not redis_rev and self.db_rev is None:
            return None
        # Both parts: a revision that Redis missed (written while it was down) still shows
        # through the database's within TTL.
        return f"{(redis_rev or b'').decode()}|{self.db_rev or ''}"


_CACHE: dict[str, BrandKeys] = {}
# brand id -> the chatbot revision this process last read from Redis ("" for none)
_REVS: dict[int, str] = {}


def last_rev(brand_id: int) -> str | None:
    """The chatbot revision last seen in Redis for the brand (None: not seen yet)."""
    return _REVS.get(brand_id)


def saw_rev(brand_id: int, rev: bytes | None) -> None:
    _REVS[brand_id] = rev.decode() if rev else ""


def hash_key(brand_id: int) -> str:
    return key(brand_id, "wx-cb")


def get(slug: str, *, fresh: bool = False) -> BrandKeys | None:
    """The active brand ``slug``'s keys, from the cache unless expired or ``fresh``."""
    keys = _CACHE.get(slug)
    if keys is not None and not fresh and keys.expires > time.monotonic():
        return keys
    keys = _load(slug)
    if keys is None:
        _CACHE.pop(slug, None)
    else:
        _CACHE[slug] = keys
    return keys


def current(slug: str) -> BrandKeys | None:
    """The active brand ``slug`` for a member page or mini-program request: the cached entry
    while its generation marker in Redis is the one it was loaded under (one HGET), else
    reloaded; None for an unknown or inactive brand. The request's later steps find it with
    ``cached(brand_id)``. While Redis cannot be reached a cached entry is used until it
    expires."""
    keys = _CACHE.get(slug)
    if keys is None or keys.expires <= time.monotonic():
        keys = get(slug, fresh=True)
    else:
        try:
            gen = get_redis().hget(hash_key(keys.id), "gen")
        except redis.RedisError:
            # Redis unreachable: the entry stands until it expires (TTL), then the reload
            # needs Redis again.
            gen = keys.gen.encode()
        if gen is None or gen.decode() != keys.gen:
            keys = get(slug, fresh=True)
    if keys is not None:
        remember(keys)
    return keys


def kept(slug: str) -> BrandKeys | None:
    """The process's fresh entry of ``slug``, unchecked (no Redis): for a caller that checks
    the marker itself in the same round trip as its own work (``hash_key``'s ``gen``)."""
    keys = _CACHE.get(slug)
    return keys if keys is not None and keys.expires > time.monotonic() else None


def current_with(slug: str, read: Callable) -> tuple[BrandKeys | None, list]:
    """``current(slug)`` and the answers of the reads ``read(brand_id, pipeline)`` queues on
    a Redis pipeline, in one round trip while the process's entry is fresh (the marker is
    read with them). A Redis error of the reads is raised."""
    keys = _CACHE.get(slug)
    if keys is not None and keys.expires > time.monotonic():
        pipe = get_redis().pipeline(transaction=False)
        pipe.hget(hash_key(keys.id), "gen")
        read(keys.id, pipe)
        gen, *answers = pipe.execute()
        if gen is not None and gen.decode() == keys.gen:
            remember(keys)
            return keys, answers
    keys = current(slug)
    if keys is None:
        return None, []
    pipe = get_redis().pipeline(transaction=False)
    read(keys.id, pipe)
    return keys, pipe.execute()


def remember(keys: BrandKeys) -> None:
    """Make ``keys`` this request's brand for ``cached()`` (the callback's handlers)."""
    if has_app_context():
        g.wmb_cached_brand = keys


def cached(brand_id: int) -> BrandKeys | None:
    """The brand this request found through ``current()`` (or the callback's, for its
    handlers), if it is ``brand_id``; None elsewhere (jobs and the console load the row)."""
    keys = g.get("wmb_cached_brand") if has_app_context() else None
    return keys if keys is not None and keys.id == brand_id else None


def tz_of(brand_id: int) -> zoneinfo.ZoneInfo:
    """The brand's time zone: the request's cached brand's (``cached``), else its row's."""
    keys = cached(brand_id)
    return keys.tz if keys is not None else db.session.get(Brand, brand_id).tz


def _prepare(aes_key: str, appid: str) -> MessageCrypto | CryptoError:
    try:
        return MessageCrypto(aes_key, appid)
    except CryptoError as exc:
        return exc


def _load(slug: str) -> BrandKeys | None:
    # A connection of its own: the request's session stays untouched, so the callback can
    # tell whether the handlers used the database.
    with db.engine.connect() as conn:
        row = conn.execute(_QUERY, {"slug": slug}).first()
    if row is None:
        return None
    (brand_id, slug, name, timezone, appid, secret, mp_appid, token, aes_key, previous) = row[:10]
    message_mode, rev = row[10:]
    aes_keys = tuple(k for k in (aes_key, previous) if k)
    pipe = get_redis().pipeline(transaction=False)
    hk = hash_key(brand_id)
    pipe.hsetnx(hk, "gen", secrets.token_hex(8))
    if rev:
        pipe.hsetnx(hk, "rev", rev)
    pipe.hget(hk, "gen")
    gen = pipe.execute()[-1]
    timezone = timezone or DEFAULT_TZ
    return BrandKeys(
        id=brand_id,
        slug=slug,
        name=name,
        timezone=timezone,
        tz=zoneinfo.ZoneInfo(timezone),
        appid=appid or "",
        secret=secret or "",
        mp_appid=mp_appid or "",
        token=token or "",
        aes_keys=aes_keys,
        message_mode=message_mode,
        cryptos=tuple(_prepare(k, appid or "") for k in aes_keys) if appid else (),
        db_rev=rev,
        gen=gen.decode() if gen else "",
        expires=time.monotonic() + TTL,
    )


def revalidate(slug: str, keys: BrandKeys) -> BrandKeys | None:
    """Newer keys of ``slug`` when its generation marker moved on since ``keys`` were
    loaded (the credentials may have changed), else None."""
    gen = get_redis().hget(hash_key(keys.id), "gen")
    if gen is not None and gen.decode() == keys.gen:
        return None
    fresh = get(slug, fresh=True)
    return None if fresh is not None and fresh.same_credentials(keys) else fresh


def forget(brand_id: int) -> None:
    """Make every process reload the brand on its next request (called after a change of
    the brand is committed)."""
    get_redis().hdel(hash_key(brand_id), "gen")


def publish_chatbot_rev(brand_id: int, rev: str) -> None:
    """Tell every process the brand's chatbot changed (after the change is committed)."""
    get_redis().hset(hash_key(brand_id), "rev", rev)


_ON_CLEAR: list = []


def on_clear(fn) -> None:
    """Run ``fn()`` whenever this process's cache is emptied (the pay clients go with it)."""
    if fn not in _ON_CLEAR:
        _ON_CLEAR.append(fn)


def clear() -> None:
    """Empty this process's cache."""
    _CACHE.clear()
    _REVS.clear()
    for fn in _ON_CLEAR:
        fn()


def changed_in(session: Session, brand_id: int) -> None:
    """The brand (or settings cached under its marker, ``wechat.brand_settings``) changes in
    ``session``: every process reloads it once the session commits."""
    session.info.setdefault(_CHANGED, set()).add(brand_id)


@event.listens_for(Brand, "after_update")
@event.listens_for(Brand, "after_delete")
def _brand_changed(_mapper, _connection, target: Brand) -> None:
    session = object_session(target)
    if session is not None:
        changed_in(session, target.id)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    if savepoint_event(session):
        return
    for brand_id in session.info.pop(_CHANGED, ()):
        try:
            forget(brand_id)
        except Exception:
            log.warning("callbacks of brand %s see its change within %ss", brand_id, TTL)


@event.listens_for(Session, "after_rollback")
def _forget_nothing(session: Session) -> None:
    if savepoint_event(session):
        return
    session.info.pop(_CHANGED, None)
