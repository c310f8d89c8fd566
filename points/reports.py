"""Points reports: the brand's liability and its redemption rate over time."""

from __future__ import annotations

import dataclasses
import datetime as dt

from core import rollups
from core.db import utcnow
from points import rules
from points.models import EARN, EXPIRE, REFUND, SPEND
from points.rollups import POINTS_ACCOUNTS, POINTS_DAY


@dataclasses.dataclass(frozen=True)
class Liability:
    members: int
    balance: int
    pending: int
    debt: int
    exchange_points: int
    exchange_fen: int

    @property
    def outstanding(self) -> int:
        """Points the brand owes: available plus pending."""
        return self.balance + self.pending

    @property
    def value_fen(self) -> int:
        """The outstanding points valued at the exchange rate (rounded down to the fen)."""
        return self.outstanding * self.exchange_fen // self.exchange_points


@dataclasses.dataclass(frozen=True)
class Month:
    month: dt.date  # first day, brand calendar
    earned: int
    spent: int
    expired: int
    outstanding: int  # balance + pending - debt at the month's end

    @property
    def redemption_permille(self) -> int:
        """Points spent per thousand earned in the month."""
        return self.spent * 1000 // self.earned if self.earned else 0


def liability() -> Liability:
    """The current brand's outstanding points and what they are worth, from the rollups: the
    entries' deltas add up to the accounts' balances (the ledger's invariant)."""
    settings = rules.get_settings()
    tz = rules.brand_tz().key
    ((balance, pending, debt),) = rollups.query(
        POINTS_DAY.name,
        "SELECT coalesce(sum(d_balance), 0), coalesce(sum(d_pending), 0),"
        " coalesce(sum(d_debt), 0) FROM {rel} u",
        tz=tz,
    )
    ((members,),) = rollups.query(
        POINTS_ACCOUNTS.name, "SELECT coalesce(sum(accounts), 0) FROM {rel} u", tz=tz
    )
    return Liability(
        int(members),
        int(balance),
        int(pending),
        int(debt),
        settings.exchange_points,
        settings.exchange_fen,
    )


def monthly(*, months: int = 12, now: dt.datetime | None = None) -> list[Month]:
    """Earned, spent and expired points per month of the brand's calendar, oldest first."""
    now = now or utcnow()
    today = rules.local_day(now, rules.brand_tz())
    starts = [rules.add_months(today.replace(day=1), -i) for i in range(months - 1, -1, -1)]
    first = starts[0]
    tz = rules.brand_tz().key
    ((opening,),) = rollups.query(
        POINTS_DAY.name,
        "SELECT coalesce(sum(d_balance + d_pending - d_debt), 0) FROM {rel} u WHERE day < :first",
        tz=tz,
        first=first,
    )
    # One row per month and kind (the months' first days), from at most a year of day rows.
    rows = rollups.query(
        POINTS_DAY.name,
        "SELECT date_trunc('month', day)::date, kind, sum(points_in + points_out),"
        " sum(d_balance + d_pending - d_debt) FROM {rel} u WHERE day >= :first GROUP BY 1, 2",
        tz=tz,
        first=first,
    )
    buckets = {s: {"earned": 0, "spent": 0, "expired": 0, "net": 0} for s in starts}
    for day, kind, points, change in rows:
        b = buckets.get(day.replace(day=1))
        if b is None:
            continue
        points, change = int(points or 0), int(change or 0)
        b["net"] += change
        if kind == EARN:
            b["earned"] += points
        elif kind == REFUND:
            b["earned"] += points  # refunds are negative: they reduce what was earned
        elif kind == SPEND:
            b["spent"] -= points
        elif kind == EXPIRE:
            b["expired"] -= points
    out, running = [], int(opening)
    for s in starts:
        b = buckets[s]
        running += b["net"]
        out.append(Month(s, max(0, b["earned"]), b["spent"], b["expired"], running))
    return out
