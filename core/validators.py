"""Validators shared by forms and services."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo

import phonenumbers

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def is_mobile(value: str) -> bool:
    """A mainland China mobile number: 11 digits starting 13-19."""
    return bool(PHONE_RE.match(value or ""))


def normalize_phone(value: str) -> str:
    """A mainland mobile number in its 11-digit form, however it was typed (+86, 0086, 86,
    spaces, dashes, full-width digits); anything that is not one comes back trimmed."""
    value = unicodedata.normalize("NFKC", value or "").strip()
    compact = re.sub(r"[\s\-().]", "", value)
    if PHONE_RE.match(compact):
        return compact
    try:
        parsed = phonenumbers.parse(compact, "CN")
    except phonenumbers.NumberParseException:
        return compact
    national = str(parsed.national_number)
    if parsed.country_code == 86 and PHONE_RE.match(national):
        return national
    return compact


def mask_phone(value: str) -> str:
    if len(value) == 11:
        return value[:3] + "****" + value[7:]
    return "***"


def is_timezone(value: str) -> bool:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def whole(value, field: str, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) from ``low`` to ``high``; else a ValidationError
    on ``field`` that names the range."""
    from flask_babel import lazy_gettext as _l

    from core.errors import ValidationError

    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationError(
            _l("Enter a whole number from %(low)d to %(high)d.", low=low, high=high), field=field
        )
    return value
