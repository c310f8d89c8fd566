"""The WeChat API client under ``wechat.gateway``: errors, one wechatpy client per brand, the
access token shared through Redis, call counters. Domains call ``wechat.gateway``, not this.

wechatpy 1.8.18 is used for request building but wrapped where it falls short: its hosts
are hard-coded (so clients are pointed at WECHAT_API_BASE here), it has no token refresh
lock (so the token lives in Redis and one process refreshes it under a lock), its
``auto_retry`` recurses without bound on 40001 (so it is off and we retry once), and it has
no default timeout (so every call gets WECHAT_TIMEOUT).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import requests
from flask import current_app
from wechatpy import WeChatClient
from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.exceptions import WeChatClientException

from core.db import db
from core.metrics import WECHAT_CALLS
from core.redis import get_redis, key
from org.models import Brand
from wechat import inprocess
from wechat.pooled import Answer

log = logging.getLogger(__name__)

T = TypeVar("T")

REAL_API_HOST = "https://api.weixin.qq.com/"
# Codes after which a fresh access_token fixes the call (retried once).
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# Codes that clear up by themselves: busy, daily quota, per-minute limit.
RETRYABLE_ERRORS = frozenset({-1, 45009, 45011})
OAUTH_CODE_ERRORS = frozenset({40029, 40163})
# Keep a refreshed token this long less than WeChat says, so it is replaced while valid.
TOKEN_MARGIN = 300
STATS_DAYS = 8


class WeChatError(Exception):
    """Any failure talking to WeChat."""


class NotConfigured(WeChatError):
    """The brand has no credentials for this API."""


class WeChatAPIError(WeChatError):
    """WeChat answered an error code (``errcode`` is None for transport failures)."""

    def __init__(self, errcode: int | None, errmsg: str = ""):
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class RetryableError(WeChatAPIError):
    """Busy, over quota, timed out or disconnected: try again later (jobs back off)."""


class OAuthCodeError(WeChatAPIError):
    """The OAuth (or js_code) code is unknown (40029) or was already used (40163)."""


def error_for(errcode: int | None, errmsg: str = "") -> WeChatAPIError:
    """The exception class that fits an errcode."""
    if errcode is None or errcode in RETRYABLE_ERRORS:
        return RetryableError(errcode, errmsg)
    if errcode in OAUTH_CODE_ERRORS:
        return OAuthCodeError(errcode, errmsg)
    return WeChatAPIError(errcode, errmsg)


# --- configuration ----------------------------------------------------------------------------


def api_base() -> str:
    return current_app.config["WECHAT_API_BASE"].rstrip("/")


def is_real_wechat() -> bool:
    return api_base() + "/" == REAL_API_HOST


def timeout() -> float:
    return float(current_app.config.get("WECHAT_TIMEOUT", 5))


def load_brand(brand_id: int) -> Brand:
    brand = db.session.get(Brand, brand_id)
    if brand is None:
        raise NotConfigured(f"brand {brand_id} does not exist")
    return brand


# --- counters ---------------------------------------------------------------------------------


def _stats_key(brand_id: int, day: dt.date) -> str:
    return key(brand_id, "wechat", "calls", day.strftime("%Y%m%d"))


def record_call(brand_id: int, api: str, errcode: int | str) -> None:
    """Count one call of ``api`` and its outcome (0, an errcode, ``timeout``, ``network``)."""
    WECHAT_CALLS.labels(str(brand_id), api, str(errcode)).inc()
    try:
        k = _stats_key(brand_id, dt.datetime.now(dt.UTC).date())
        pipe = get_redis().pipeline()
        pipe.hincrby(k, f"{api}|{errcode}", 1)
        pipe.expire(k, STATS_DAYS * 86400)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not count a WeChat call", exc_info=True)


def call_stats(brand_id: int, *, day: dt.date | None = None) -> dict:
    """Calls and errors of one UTC day (today by default), by API and by errcode."""
    day = day or dt.datetime.now(dt.UTC).date()
    by_api: dict[str, dict] = {}
    by_errcode: dict[str, int] = {}
    total = errors = 0
    for field, n in get_redis().hgetall(_stats_key(brand_id, day)).items():
        field = field.decode() if isinstance(field, bytes) else field
        api, _, code = field.rpartition("|")
        n = int(n)
        entry = by_api.setdefault(api, {"calls": 0, "errors": {}})
        entry["calls"] += n
        total += n
        if code != "0":
            entry["errors"][code] = entry["errors"].get(code, 0) + n
            by_errcode[code] = by_errcode.get(code, 0) + n
            errors += n
    return {
        "day": day.isoformat(),
        "calls": total,
        "errors": errors,
        "by_api": by_api,
        "by_errcode": by_errcode,
    }


# --- values shared by all processes, refreshed by one at a time -------------------------------


def _text(raw: Any) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def _release(r: redis.Redis, lock_key: str, owner: str) -> None:
    with r.pipeline() as pipe:
        try:
            pipe.watch(lock_key)
            if _text(pipe.get(lock_key)) == owner:
                pipe.multi()
                pipe.delete(lock_key)
                pipe.execute()
        except redis.WatchError:
            pass


def locked_value(
    cache_key: str, fetch: Callable[[], tuple[str, int]], *, stale: str | None = None
) -> str:
    """The cached value, or a fresh one fetched by exactly one process at a time.

    ``fetch`` returns ``(value, expires_in)``. A value equal to ``stale`` (the one WeChat just
    rejected) counts as missing. Processes that do not get the lock wait and re-read, so 20
    concurrent first calls make one fetch.
    """
    r = get_redis()
    lock_key = cache_key + ":lock"
    hold = timeout() * 2 + 1
    deadline = time.monotonic() + hold + 1
    while True:
        current = _text(r.get(cache_key))
        if current and current != stale:
            return current
        owner = secrets.token_hex(8)
        if r.set(lock_key, owner, nx=True, px=int(hold * 1000)):
            try:
                current = _text(r.get(cache_key))
                if current and current != stale:
                    return current
                value, expires_in = fetch()
                ttl = max(60, int(expires_in) - TOKEN_MARGIN)
                r.set(cache_key, value, ex=ttl)
                return value
            finally:
                _release(r, lock_key, owner)
        if time.monotonic() > deadline:
            raise RetryableError(None, "timed out waiting for another process's refresh")
        time.sleep(0.05)


# --- clients ----------------------------------------------------------------------------------


class GatewayClient(WeChatClient):
    """A WeChatClient aimed at WECHAT_API_BASE whose token lives in Redis."""

    def __init__(self, appid: str, secret: str, *, brand_id: int, base: str, timeout: float):
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.brand_id = brand_id
        self.api_base = base
        self.API_BASE_URL = base + "/cgi-bin/"
        # wechatpy's API groups carry their own absolute hosts; re-aim each at the base.
        for name in dir(type(self)):
            if isinstance(getattr(type(self), name, None), BaseWeChatAPI):
                group = getattr(self, name)
                default = getattr(type(group), "API_BASE_URL", None)
                if default and default.startswith(REAL_API_HOST):
                    group.API_BASE_URL = base + "/" + default[len(REAL_API_HOST) :]
        self._token_key = key(brand_id, "wechat", "access_token", appid)
        inprocess.aim(self._http, base)

    @property
    def access_token(self) -> str:
        return locked_value(self._token_key, self._fetch_token)

    def refresh_token(self, stale: str) -> str:
        """A new token after WeChat rejected ``stale`` (unless another process already did)."""
        return locked_value(self._token_key, self._fetch_token, stale=stale)

    def fetch_access_token(self) -> dict:
        # wechatpy's own fetch ignores the base URL and the timeout: never used.
        raise NotImplementedError("tokens are fetched through GatewayClient.refresh_token")

    def _fetch_token(self) -> tuple[str, int]:
        result = transport(
            self.brand_id,
            "token",
            lambda: self._http.get(
                self.api_base + "/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                },
                timeout=self.timeout,
            ),
        )
        return result["access_token"], int(result.get("expires_in", 7200))


def transport(brand_id: int, api: str, send: Callable[[], requests.Response | Answer]) -> dict:
    """Send one raw request, count it and turn its errcode into our exceptions (``send``
    raises requests' exceptions when the request cannot be made)."""
    try:
        res = send()
    except requests.Timeout as exc:
        record_call(brand_id, api, "timeout")
        raise RetryableError(None, f"timed out: {exc}") from exc
    except requests.RequestException as exc:
        record_call(brand_id, api, "network")
        raise RetryableError(None, f"network error: {exc}") from exc
    if res.status_code >= 500:
        record_call(brand_id, api, "http")
        raise RetryableError(None, f"HTTP {res.status_code}")
    try:
        result = res.json()
    except ValueError as exc:
        record_call(brand_id, api, "http")
        raise WeChatAPIError(None, f"not JSON (HTTP {res.status_code})") from exc
    code = int(result.get("errcode") or 0)
    record_call(brand_id, api, code)
    if code:
        raise error_for(code, result.get("errmsg", ""))
    return result


_clients: dict[tuple, GatewayClient] = {}


def client_for(brand_id: int, *, mini_program: bool = False) -> GatewayClient:
    """The brand's official-account (or mini-program) client."""
    brand = load_brand(brand_id)
    appid, secret = (
        (brand.mp_appid, brand.mp_secret) if mini_program else (brand.appid, brand.secret)
    )
    if not appid or not secret:
        kind = "mini-program" if mini_program else "official account"
        raise NotConfigured(f"brand {brand_id} has no {kind} appid/secret")
    # in-process clients are bound to one app object (tests build several apps)
    app_id = id(current_app._get_current_object()) if inprocess.enabled() else None  # noqa: SLF001
    cache_key = (brand_id, appid, secret, api_base(), timeout(), app_id)
    client = _clients.get(cache_key)
    if client is None:
        client = GatewayClient(appid, secret, brand_id=brand_id, base=api_base(), timeout=timeout())
        _clients[cache_key] = client
    return client


def call(
    brand_id: int,
    api: str,
    fn: Callable[[GatewayClient], T],
    *,
    mini_program: bool = False,
    needs_token: bool = True,
) -> T:
    """Run ``fn(client)`` with one refresh-and-retry on a token error, never more."""
    client = client_for(brand_id, mini_program=mini_program)
    for attempt in (1, 2):
        token = client.access_token if needs_token else None
        try:
            result = fn(client)
        except WeChatClientException as exc:
            code = exc.errcode
            if code is None:
                status = getattr(exc.response, "status_code", None)
                record_call(brand_id, api, "http")
                raise RetryableError(None, f"HTTP {status}") from exc
            code = int(code)
            record_call(brand_id, api, code)
            if code in TOKEN_ERRORS and attempt == 1 and token is not None:
                log.info("WeChat rejected the access token (%s); refreshing once", code)
                client.refresh_token(stale=token)
                continue
            raise error_for(code, str(exc.errmsg or "")) from exc
        except requests.Timeout as exc:
            record_call(brand_id, api, "timeout")
            raise RetryableError(None, f"timed out: {exc}") from exc
        except requests.RequestException as exc:
            record_call(brand_id, api, "network")
            raise RetryableError(None, f"network error: {exc}") from exc
        record_call(brand_id, api, 0)
        return result
    raise AssertionError("unreachable")  # pragma: no cover
