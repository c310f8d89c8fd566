"""Pydantic models of the mini-program API: requests are validated with them and the OpenAPI
document (``/api/mp/openapi.json``) is generated from them, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from core import api

# Printable ASCII only: what wx.login / getPhoneNumber codes are made of.
WxCode = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$", description="A WeChat code"),
]


def _clean_text(value: str) -> str:
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("control characters are not allowed")
    if not value:
        raise ValueError("must not be empty")
    return value


def _past_birthday(value: dt.date) -> dt.date:
    if not dt.date(1900, 1, 1) <= value <= dt.date.today():
        raise ValueError("birthday must be between 1900-01-01 and today")
    return value


Name = Annotated[str, Field(min_length=1, max_length=80), AfterValidator(_clean_text)]


def _date_text(value: object) -> object:
    # JSON has no date: only "YYYY-MM-DD" is one (a number would be read as a Unix time).
    if not isinstance(value, str | dt.date):
        raise ValueError("birthday must be a date written YYYY-MM-DD")
    return value


Birthday = Annotated[
    dt.date,
    BeforeValidator(_date_text),
    AfterValidator(_past_birthday),
    Field(description="YYYY-MM-DD, from 1900-01-01 to today"),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1000)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors -------------------------------------------------------------------------------------


# The error body is core's, shared by every JSON API.
ErrorBody = api.ErrorBody
ErrorResponse = api.ErrorResponse


# --- login and phone ----------------------------------------------------------------------------


class LoginRequest(_In):
    code: WxCode = Field(description="The code from wx.login()")


class LoginResponse(_Out):
    token: str = Field(description="Opaque session token: send it as `Authorization: Bearer`")
    expires_in: int = Field(description="Seconds the token stays valid")
    activated: bool = Field(description="Whether this WeChat user already holds a member card")


class PhoneRequest(_In):
    code: WxCode = Field(description="The code from the getPhoneNumber button")
    consent_version: Annotated[
        str, Field(pattern=r"^[0-9A-Za-z._-]{1,20}$", description="Privacy terms agreed to")
    ]


# --- member -------------------------------------------------------------------------------------


class TierOut(_Out):
    code: str
    name: str
    points_multiplier_permille: int


class StoreBrief(_Out):
    id: int
    code: str
    name: str
    city: str


class GuideBrief(_Out):
    id: int
    name: str


class ProfileOut(_Out):
    card_no: str
    phone: str | None = Field(description="Masked, e.g. 139****0001")
    name: str
    gender: Literal["", "m", "f"]
    birthday: dt.date | None
    tier: TierOut | None
    store: StoreBrief | None
    guide: GuideBrief | None


class PhoneResponse(_Out):
    created: bool = Field(description="True when this call created the member")
    profile: ProfileOut


class ProfilePatch(_In):
    name: Name | None = None
    gender: Literal["", "m", "f"] | None = None
    birthday: Birthday | None = None


class ProgressOut(_Out):
    basis: Literal["spend", "growth"]
    value: int = Field(description="Rolling-12-month spend (fen) or growth value")
    next_tier: TierOut | None
    needed: int = Field(description="Still needed to reach the next tier")
    next_review_on: dt.date


class CardOut(_Out):
    card_no: str
    tier: TierOut | None
    progress: ProgressOut
    till_code: str = Field(description="18-digit member code for the till (CODE128 barcode)")
    till_code_refresh_in: int = Field(description="Seconds until a new till code is due")


class TillCodeOut(_Out):
    card_no: str
    till_code: str = Field(description="18-digit member code for the till (Code 128 barcode)")
    refresh_in: int = Field(description="Seconds until a new till code is due")


# --- stores -------------------------------------------------------------------------------------


class StoresQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude (GCJ-02)")
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude (GCJ-02)")
    page: int = Field(default=1, ge=1, le=10_000)
    per_page: int = Field(default=10, ge=1, le=50)


class StoreOut(_Out):
    id: int
    code: str
    name: str
    city: str
    address: str
    lat: float
    lng: float
    distance_m: int


class StoresPage(_Out):
    items: list[StoreOut]
    page: int
    per_page: int
    total: int
