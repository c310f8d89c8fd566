"""Template and subscribe message data as WeChat shows it today.

Since 2023-05-04 an official account's template message shows neither ``first`` nor
``remark``, no colours and no emoji, and each keyword value at most 20 characters (the rest
becomes an ellipsis; a run of digits or Latin letters counts as one character there). A
mini-program subscribe message refuses a value over its type's limit. So a notice puts
everything that matters in its keywords, each trimmed here where WeChat would cut it.
"""

from __future__ import annotations

import re

KEYWORD_LIMIT = 20
ELLIPSIS = "…"
HIDDEN_FIELDS = ("first", "remark")
# One unit as WeChat counts a template value: a run of ASCII letters/digits, or one character.
_UNIT = re.compile(r"[0-9A-Za-z]+|.", re.S)
# Emoji and pictographs, which a template message no longer shows.
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")

# A subscribe message's value limits by key type (``thing1`` is a ``thing``), in characters.
SUBSCRIBE_LIMITS = {
    "thing": 20,
    "name": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "phrase": 5,
    "amount": 32,
}


def shown(value: object, limit: int = KEYWORD_LIMIT) -> str:
    """The keyword value as a template message displays it: no emoji, cut with an ellipsis."""
    text = re.sub(r"\s{2,}", " ", _EMOJI.sub("", str(value))).strip()
    units = _UNIT.findall(text)
    if len(units) <= limit:
        return text
    return "".join(units[:limit]) + ELLIPSIS


def keywords(*values: object) -> dict:
    """Template data ``keyword1..n`` from the values in order, each trimmed as WeChat shows it."""
    return {f"keyword{i}": {"value": shown(v)} for i, v in enumerate(values, start=1)}


def subscribe_limit(name: str) -> int | None:
    """The length limit of a subscribe message key (``thing1`` -> 20), None when unlimited."""
    return SUBSCRIBE_LIMITS.get(name.rstrip("0123456789"))


def too_long_subscribe_value(data: dict) -> str | None:
    """The first key of subscribe data whose value is over its type's limit, else None."""
    for name, item in (data or {}).items():
        value = item.get("value") if isinstance(item, dict) else item
        limit = subscribe_limit(str(name))
        if limit is not None and len(str(value or "")) > limit:
            return str(name)
    return None


def as_shown(data: dict) -> dict:
    """Template data as the member sees it: without first/remark, values trimmed, no colours."""
    out = {}
    for name, item in (data or {}).items():
        if name in HIDDEN_FIELDS:
            continue
        value = item.get("value") if isinstance(item, dict) else item
        out[name] = {"value": shown(value if value is not None else "")}
    return out
