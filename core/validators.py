"""Validators shared by forms and services."""

from __future__ import annotations

import re
import zoneinfo

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def is_mobile(value: str) -> bool:
    """A mainland China mobile number: 11 digits starting 13-19."""
    return bool(PHONE_RE.match(value or ""))


def normalize_phone(value: str) -> str:
    value = (value or "").strip().replace(" ", "").replace("-", "")
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    return value


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
