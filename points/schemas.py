"""Pydantic models of the points operations of the mini-program API (``/api/mp/openapi.json``)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BalanceOut(_Out):
    balance: int = Field(description="Points available to spend")
    pending: int = Field(description="Earned, available once the return window closes")
    debt: int = Field(description="Owed after a refund; new points repay it first")
    lifetime_earned: int
    lifetime_spent: int
    lifetime_expired: int


class PendingOut(_Out):
    available_at: dt.datetime
    points: int


class PendingList(_Out):
    items: list[PendingOut]
    total: int = Field(description="All pending points")


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    before: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="`next_before` of the previous page"
    )
    limit: int = Field(default=20, ge=1, le=100)


class HistoryOut(_Out):
    id: int
    kind: str = Field(description="earn, release, spend, expire, refund, adjust, welcome, ...")
    points: int = Field(description="Signed: negative for spending and expiry")
    reason: str
    occurred_at: dt.datetime
    store_id: int | None
    amount_fen: int | None


class HistoryPageOut(_Out):
    items: list[HistoryOut]
    next_before: int | None = Field(description="Pass as `before` for older entries; null: none")


class ExpiringOut(_Out):
    expires_at: dt.datetime
    points: int


class ExpiringQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    within_days: int | None = Field(default=None, ge=1, le=3660)
    limit: int = Field(default=20, ge=1, le=100)


class ExpiringList(_Out):
    items: list[ExpiringOut]
    # More expiry times follow the ones listed (ask with a larger limit or a window).
    has_more: bool = False
