"""Pydantic models of the member's orders and after-sale in the mini-program API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1000)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrdersQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    after: int | None = Field(default=None, ge=0, description="The last order id of a page")


class OrderSummary(_Out):
    order_no: str
    status: str = Field(description="created, paid, shipped, ready, received, completed, closed")
    refund_state: str = Field(description="none, partial or full")
    channel: str
    pay_fen: int
    created_at: dt.datetime


class OrderList(_Out):
    items: list[OrderSummary]
    next_after: int | None = Field(description="Pass as ?after= for the next page")


class LineOut(_Out):
    line_id: int
    name: str
    spec: str
    unit_price_fen: int
    quantity: int
    goods_fen: int
    discount_fen: int = Field(description="This line's share of the coupons")
    points_fen: int = Field(description="This line's share of the points")
    pay_fen: int
    refunded_fen: int = Field(description="Refunded or being refunded")
    refunded_qty: int
    refundable_fen: int
    refundable_qty: int
    may_request: bool = Field(description="An after-sale request may be opened for this line")


class AfterSaleLineOut(_Out):
    line_id: int
    quantity: int
    amount_fen: int


class AfterSaleOut(_Out):
    request_no: str
    kind: str = Field(description="refund_only or return_refund")
    status: str = Field(
        description="requested, approved, refused, refunding, refunded or cancelled"
    )
    reason: str
    amount_fen: int
    refuse_reason: str | None
    return_tracking_no: str | None
    lines: list[AfterSaleLineOut]


class RefundOut(_Out):
    out_refund_no: str
    amount_fen: int
    status: str = Field(description="processing, success or failed")
    points_returned: int
    paid_twice: bool = Field(
        default=False,
        description="The return of a second payment of the order (paid in two places), whole",
    )


class OrderOut(_Out):
    order_no: str
    status: str
    refund_state: str
    channel: str
    fulfilment: str = Field(description="delivery, pickup or in_store")
    goods_fen: int
    discount_fen: int
    points_used: int
    points_fen: int
    shipping_fen: int
    pay_fen: int
    refunded_fen: int
    points_earned: int
    carrier: str | None
    tracking_no: str | None
    pickup_code: str | None = Field(description="Shown while the order waits for pick-up")
    pickup_store: str | None
    created_at: dt.datetime
    paid_at: dt.datetime | None
    lines: list[LineOut]
    after_sales: list[AfterSaleOut]
    refunds: list[RefundOut]


class AfterSaleItem(_In):
    line_id: int = Field(ge=1)
    quantity: int = Field(ge=0, le=100000, description="Units (0: money only, refund only)")
    amount_fen: int | None = Field(
        default=None, ge=1, description="Omit for the units' share of what the line was paid"
    )


class AfterSaleRequest(_In):
    kind: Literal["refund_only", "return_refund"]
    reason: str = Field(min_length=1, max_length=200)
    lines: list[AfterSaleItem] = Field(min_length=1, max_length=50)


class TrackingRequest(_In):
    return_tracking_no: str = Field(min_length=1, max_length=64)
