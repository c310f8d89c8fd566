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


# A delivery address: its fields and their longest lengths (district may be empty).
ADDRESS_FIELDS = {
    "name": 40,
    "phone": 20,
    "province": 20,
    "city": 30,
    "district": 30,
    "detail": 120,
}
OPTIONAL_ADDRESS_FIELDS = frozenset({"district"})


def check_address(values: dict, *, prefix: str = "") -> dict:
    """A delivery address (``ADDRESS_FIELDS``) trimmed and checked, the phone in its 11-digit
    form; else a ValidationError on the first bad field (named ``prefix`` + the field). A
    value that is not a string counts as empty."""
    from flask_babel import lazy_gettext as _l

    from core.errors import ValidationError

    out = {}
    for name, limit in ADDRESS_FIELDS.items():
        value = values.get(name)
        value = value.strip() if isinstance(value, str) else ""
        if not value and name not in OPTIONAL_ADDRESS_FIELDS:
            raise ValidationError(_l("This field is required."), field=prefix + name)
        if len(value) > limit:
            raise ValidationError(_l("At most %(n)d characters.", n=limit), field=prefix + name)
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValidationError(_l("Remove the control characters."), field=prefix + name)
        out[name] = value
    out["phone"] = normalize_phone(out["phone"])
    if not is_mobile(out["phone"]):
        raise ValidationError(_l("Enter a mobile number."), field=prefix + "phone")
    return out
