"""The member code for the till (会员码): 18 digits that change every 60 seconds.

Scheme (all keys derive from the app's SECRET_KEY, so every process agrees without state):

* ``base = HMAC-SHA256(SECRET_KEY, "wmb-till-code/v1")``;
* per brand and 60-second window ``w = floor(unix_time / 60)``:
  ``k = HMAC-SHA256(base, "<brand_id>:<w>")``;
* the member id (below 10^10) is encrypted with a format-preserving 8-round Feistel network
  over two halves of 5 decimal digits (round function ``HMAC(k, round:half) mod 10^5``),
  giving 10 digits that look random and change every window;
* a MAC of 7 digits, ``HMAC(k, "mac:<member_id>") mod 10^7``, proves the code was made here;
* code = ``"9"`` + the 10 encrypted digits + the 7 MAC digits. The leading 9 keeps member
  codes apart from WeChat Pay (10-15) and Alipay (25-30) payment codes scanned at the same till.

``verify_till_code`` tries the current and the previous window (a code shown at second 59 is
still good at the till a few seconds later), compares MACs in constant time, and tells an
expired code (valid in an older window, up to 10 minutes) from a wrong one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from flask import current_app
from flask_babel import lazy_gettext as _l

from core.db import utcnow
from core.errors import ValidationError
from core.tenancy import require_brand_id

WINDOW_SECONDS = 60
PREFIX = "9"
CODE_LENGTH = 18
ID_DIGITS = 10
MAC_DIGITS = 7
ROUNDS = 8
HALF = 10**5
MAX_MEMBER_ID = 10**ID_DIGITS - 1
# How far back an old code is recognised as "expired" rather than "invalid".
EXPIRED_LOOKBACK = 10


class TillCodeError(ValidationError):
    """A member code that cannot be accepted at the till."""

    code = "till_code_invalid"


class TillCodeInvalid(TillCodeError):
    """Not a code this brand made (mistyped, tampered, another brand's)."""

    code = "till_code_invalid"


class TillCodeExpired(TillCodeError):
    """A real code, but older than the current and the previous minute."""

    code = "till_code_expired"


def _base_key() -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"wmb-till-code/v1", hashlib.sha256).digest()


def _window(now: dt.datetime | None) -> int:
    return int((now or utcnow()).timestamp()) // WINDOW_SECONDS


def _window_key(base: bytes, brand_id: int, window: int) -> bytes:
    return hmac.new(base, f"{brand_id}:{window}".encode(), hashlib.sha256).digest()


def _round(key: bytes, i: int, half: int) -> int:
    digest = hmac.new(key, f"{i}:{half}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % HALF


def _encrypt(key: bytes, value: int) -> int:
    left, right = divmod(value, HALF)
    for i in range(ROUNDS):
        left, right = right, (left + _round(key, i, right)) % HALF
    return left * HALF + right


def _decrypt(key: bytes, value: int) -> int:
    left, right = divmod(value, HALF)
    for i in reversed(range(ROUNDS)):
        left, right = (right - _round(key, i, left)) % HALF, left
    return left * HALF + right


def _mac(key: bytes, member_id: int) -> str:
    digest = hmac.new(key, f"mac:{member_id}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**MAC_DIGITS:0{MAC_DIGITS}d}"


def _code(key: bytes, member_id: int) -> str:
    return f"{PREFIX}{_encrypt(key, member_id):0{ID_DIGITS}d}{_mac(key, member_id)}"


def make_till_code(*, member_id: int, now: dt.datetime | None = None) -> str:
    """The member's code for the current 60-second window of the current brand."""
    if not isinstance(member_id, int) or not 0 < member_id <= MAX_MEMBER_ID:
        raise ValueError("member id out of the till code's range")
    key = _window_key(_base_key(), require_brand_id(), _window(now))
    return _code(key, member_id)


def seconds_left(*, now: dt.datetime | None = None) -> int:
    """Seconds until the current code is replaced by the next one."""
    ts = int((now or utcnow()).timestamp())
    return WINDOW_SECONDS - ts % WINDOW_SECONDS


def _match(key: bytes, body: str) -> int | None:
    member_id = _decrypt(key, int(body[:ID_DIGITS]))
    if member_id == 0:
        return None
    expected = _mac(key, member_id)
    if hmac.compare_digest(expected.encode(), body[ID_DIGITS:].encode()):
        return member_id
    return None


def verify_till_code(code: str, *, now: dt.datetime | None = None) -> int:
    """The member id behind a code of the current brand; TillCodeExpired or TillCodeInvalid."""
    code = (code or "").strip() if isinstance(code, str) else ""
    if len(code) != CODE_LENGTH or not code.isascii() or not code.isdigit():
        raise TillCodeInvalid(_l("this is not a member code"), field="code")
    if not code.startswith(PREFIX):
        raise TillCodeInvalid(_l("this is not a member code"), field="code")
    body = code[len(PREFIX) :]
    base, brand_id, window = _base_key(), require_brand_id(), _window(now)
    # Every candidate window is checked (no early exit) so timing says nothing about which.
    found: int | None = None
    for w in (window, window - 1):
        hit = _match(_window_key(base, brand_id, w), body)
        if hit is not None and found is None:
            found = hit
    if found is not None:
        return found
    for w in range(window - 2, window - 2 - EXPIRED_LOOKBACK, -1):
        if _match(_window_key(base, brand_id, w), body) is not None:
            raise TillCodeExpired(
                _l("this member code has expired; ask for a fresh one"), field="code"
            )
    raise TillCodeInvalid(_l("invalid member code"), field="code")
