"""Pydantic models of the coupon and points-mall operations of the mini-program API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

IdempotencyKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="Chosen by the client for this one action (e.g. a UUID); "
        "retrying with the same key has one effect",
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1000)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CouponsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tab: Literal["available", "used", "expired"] = "available"


class TemplateOut(_Out):
    id: int
    name: str
    kind: str = Field(description="cash, percent, gift, exchange, shipping or third_party")
    description: str
    value_fen: int
    threshold_fen: int
    percent_off: int
    cap_fen: int
    gift_name: str
    store_ids: list[int] = Field(description="Stores where it can be used; empty: every store")
    shareable: bool


class CouponOut(_Out):
    id: int
    code: str = Field(description="Shown as a QR code for the till")
    status: Literal["available", "redeemed", "expired", "transferred", "void"]
    source: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    redeemed_at: dt.datetime | None
    template: TemplateOut


class CouponList(_Out):
    items: list[CouponOut]


class ActionRequest(_In):
    idempotency_key: IdempotencyKey


class ShareOut(_Out):
    token: str = Field(description="Pass to a friend: GET/POST coupons/share/{token}")
    status: Literal["open", "claimed"]


class ShareInfo(_Out):
    status: Literal["open", "claimed"]
    coupon_name: str
    valid_until: dt.datetime


class MallItemOut(_Out):
    id: int
    title: str
    price_points: int
    stock_left: int | None = Field(description="null: unlimited")
    per_member_limit: int
    template_id: int


class MallList(_Out):
    items: list[MallItemOut]
    balance: int = Field(description="The member's points available to spend")


class ExchangeOut(_Out):
    order_id: int
    coupon_id: int
    points: int = Field(description="Points spent")
    title: str
