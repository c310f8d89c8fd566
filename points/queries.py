"""Reads of the ledger for the member center, the console and other packages."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, distinct, func, select

from core import rollups
from core.db import db, utcnow
from core.paging import KeysetPage, keyset_page, newest_first
from core.tenancy import require_brand_id
from members.models import ACTIVE, Member
from points.errors import UnknownMember
from points.membership import check_member_id, require_member
from points.models import (
    ADJUST,
    EARN,
    GAME,
    SPEND,
    WELCOME,
    PointsAccount,
    PointsCampaign,
    PointsEntry,
    PointsLot,
)
from points.rollups import POINTS_DAY, active_members


@dataclasses.dataclass(frozen=True)
class Balance:
    """A member's points right now."""

    member_id: int
    balance: int  # available to spend
    pending: int  # earned, locked until the return window closes
    debt: int  # reversed after being spent; repaid by future earnings first
    lifetime_earned: int
    lifetime_spent: int
    lifetime_expired: int

    @property
    def net(self) -> int:
        """Available points minus debt (negative while the member owes points)."""
        return self.balance - self.debt


@dataclasses.dataclass(frozen=True)
class HistoryLine:
    id: int
    kind: str
    points: int
    reason: str
    occurred_at: dt.datetime
    store_id: int | None
    amount_fen: int | None
    operator: str | None
    note: str | None = None  # an operator's internal note: console pages only


@dataclasses.dataclass(frozen=True)
class Expiring:
    expires_at: dt.datetime
    points: int


def _account(member_id: int) -> PointsAccount | None:
    return db.session.execute(
        select(PointsAccount).where(PointsAccount.member_id == member_id)
    ).scalar_one_or_none()


_BALANCE_COLUMNS = (
    PointsAccount.balance,
    PointsAccount.pending,
    PointsAccount.debt,
    PointsAccount.lifetime_earned,
    PointsAccount.lifetime_spent,
    PointsAccount.lifetime_expired,
)


def balance(member_id: int) -> Balance:
    """The member's available, pending and owed points (zeros before any activity).

    One statement checks the member (active, this brand) and reads the account."""
    check_member_id(member_id)
    row = db.session.execute(
        select(Member.status, *_BALANCE_COLUMNS)
        .outerjoin(PointsAccount, PointsAccount.member_id == Member.id)
        .where(Member.id == member_id)
    ).first()
    if row is None or row[0] != ACTIVE:
        raise UnknownMember(_l("Unknown member."), field="member_id")
    return Balance(member_id, *(int(v or 0) for v in row[1:]))


_acct = PointsAccount.__table__.c
# The figure on the card page (members.center): the member page already checked the member,
# so this reads the account alone; no account reads as 0.
AVAILABLE_POINTS = select(_acct.balance).where(
    _acct.member_id == bindparam("member_id"), _acct.brand_id == bindparam("brand_id")
)


def available_points(member_id: int) -> int:
    """The signed-in member's available points."""
    value = db.session.execute(
        select(PointsAccount.balance).where(PointsAccount.member_id == member_id)
    ).scalar()
    return int(value or 0)


def _line(e: PointsEntry, *, with_notes: bool) -> HistoryLine:
    return HistoryLine(
        e.id,
        e.kind,
        e.points,
        e.reason,
        e.occurred_at,
        e.store_id,
        e.amount_fen,
        e.operator,
        e.note if with_notes else None,
    )


def history(
    member_id: int,
    *,
    after: str | int | None = None,
    before: str | int | None = None,
    per_page: int = 20,
    with_notes: bool = False,
    count: bool = True,
) -> KeysetPage:
    """A page of the member's entries, newest first, with their reasons (and, for the
    console, notes): the first page, or the one after / before an entry (keyset paging); the
    total is a capped count when ``count``."""
    require_member(member_id)
    page = keyset_page(
        select(PointsEntry).where(PointsEntry.member_id == member_id),
        order=newest_first(PointsEntry.id),
        per_page=min(max(1, per_page), 100),
        after=after,
        before=before,
        count=count,
    )
    return dataclasses.replace(page, items=[_line(e, with_notes=with_notes) for e in page.items])


def expiring_soon(
    member_id: int,
    *,
    within_days: int | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> list[Expiring]:
    """Points still held, by expiry time, soonest first (every future expiry if no window,
    the first ``limit`` expiry times if given)."""
    require_member(member_id)
    now = now or utcnow()
    account = _account(member_id)
    if account is None:
        return []
    stmt = (
        select(PointsLot.expires_at, func.sum(PointsLot.remaining))
        .where(
            PointsLot.account_id == account.id,
            PointsLot.remaining > 0,
            PointsLot.expires_at.is_not(None),
            PointsLot.expires_at > now,
        )
        .group_by(PointsLot.expires_at)
        .order_by(PointsLot.expires_at)
    )
    if within_days is not None:
        stmt = stmt.where(PointsLot.expires_at <= now + dt.timedelta(days=within_days))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Expiring(at, int(points)) for at, points in db.session.execute(stmt).all()]


@dataclasses.dataclass(frozen=True)
class ExpiringMonth:
    month: dt.date  # the first day of the month, in the brand's calendar
    points: int


@dataclasses.dataclass(frozen=True)
class ExpiringByMonth:
    months: list[ExpiringMonth]  # the first few months with points expiring, soonest first
    later: int  # points expiring in the months after those


def expiring_by_month(
    member_id: int, *, tz: str, months: int = 6, now: dt.datetime | None = None
) -> ExpiringByMonth:
    """The member's future expiries summed per month of the brand's calendar (``tz``): the
    first ``months`` months with any, and the points of all later ones. One aggregate over
    the member's own open lots; a member of many years has a few dozen months, not thousands
    of lines."""
    require_member(member_id)
    now = now or utcnow()
    month = func.date_trunc("month", func.timezone(tz, PointsLot.expires_at))
    stmt = (
        select(month, func.sum(PointsLot.remaining))
        .join(PointsAccount, PointsAccount.id == PointsLot.account_id)
        .where(
            PointsAccount.member_id == member_id,
            PointsLot.remaining > 0,
            PointsLot.expires_at.is_not(None),
            PointsLot.expires_at > now,
        )
        .group_by(month)
        .order_by(month)
    )
    rows = [(at.date(), int(points)) for at, points in db.session.execute(stmt).all()]
    return ExpiringByMonth(
        [ExpiringMonth(day, points) for day, points in rows[:months]],
        sum(points for _, points in rows[months:]),
    )


def campaigns() -> list[PointsCampaign]:
    """The brand's bonus campaigns, latest start first."""
    return list(
        db.session.execute(
            select(PointsCampaign).order_by(PointsCampaign.start_date.desc())
        ).scalars()
    )


@dataclasses.dataclass(frozen=True)
class Pending:
    available_at: dt.datetime
    points: int


def pending_points(member_id: int) -> list[Pending]:
    """Earned points still locked (the return window), by the time they become available."""
    require_member(member_id)
    account = _account(member_id)
    if account is None:
        return []
    stmt = (
        select(PointsLot.available_at, func.sum(PointsLot.remaining))
        .where(
            PointsLot.account_id == account.id,
            PointsLot.released.is_(False),
            PointsLot.remaining > 0,
        )
        .group_by(PointsLot.available_at)
        .order_by(PointsLot.available_at)
    )
    return [Pending(at, int(points)) for at, points in db.session.execute(stmt).all()]


def history_before(
    member_id: int, *, before_id: int | None = None, limit: int = 20
) -> list[HistoryLine]:
    """The member's entries older than ``before_id``, newest first (keyset pagination)."""
    require_member(member_id)
    stmt = select(PointsEntry).where(PointsEntry.member_id == member_id)
    if before_id is not None:
        stmt = stmt.where(PointsEntry.id < before_id)
    rows = db.session.execute(
        stmt.order_by(PointsEntry.id.desc()).limit(min(max(1, limit), 100))
    ).scalars()
    return [
        HistoryLine(
            e.id, e.kind, e.points, e.reason, e.occurred_at, e.store_id, e.amount_fen, e.operator
        )
        for e in rows
    ]


# --- the data overview (core.overview) ------------------------------------------------------
# The brand's figures come from the points rollups (core.rollups: a few rows per day, plus
# the entries recorded since the rollup's watermark); a store's figures (a store manager's)
# follow its members, so they are one aggregate over the (brand_id, local_day) index.

ISSUING_KINDS = (EARN, WELCOME, ADJUST, GAME)
ACTIVE_KINDS = (EARN, SPEND)


def _store_members(stmt, member_col, store_id: int | None):
    if store_id is None:
        return stmt
    return stmt.where(
        member_col.in_(select(Member.id).where(Member.store_id == store_id).scalar_subquery())
    )


def overview_daily(*, period, store_id: int | None) -> list[tuple]:
    """(brand-calendar day, points issued, points spent, net change of the outstanding points)
    per day of the period's window."""
    if store_id is None:
        return rollups.query(
            POINTS_DAY.name,
            "SELECT day, coalesce(sum(points_in) FILTER (WHERE kind = ANY(:issuing)), 0),"
            " coalesce(-sum(points_in + points_out) FILTER (WHERE kind = :spend), 0),"
            " coalesce(sum(d_balance + d_pending), 0) FROM {rel} u"
            " WHERE day >= :lo_day AND day < :hi_day GROUP BY day ORDER BY day",
            tz=period.tz.key,
            issuing=list(ISSUING_KINDS),
            spend=SPEND,
            lo_day=period.window_start,
            hi_day=period.end,
        )
    issuing = PointsEntry.kind.in_(ISSUING_KINDS) & (PointsEntry.points > 0)
    net = PointsEntry.delta_balance + PointsEntry.delta_pending
    stmt = (
        select(
            PointsEntry.local_day,
            func.coalesce(func.sum(PointsEntry.points).filter(issuing), 0),
            func.coalesce(func.sum(-PointsEntry.points).filter(PointsEntry.kind == SPEND), 0),
            func.coalesce(func.sum(net), 0),
        )
        .where(PointsEntry.local_day >= period.window_start, PointsEntry.local_day < period.end)
        .group_by(PointsEntry.local_day)
        .order_by(PointsEntry.local_day)
    )
    return list(db.session.execute(_store_members(stmt, PointsEntry.member_id, store_id)).all())


def overview_active(*, period, store_id: int | None) -> tuple[int, int]:
    """Members who earned or spent points in the period, and in the one before it: for the
    brand from the stored windows (points.rollups) while the job keeps them, else counted."""
    if store_id is None:
        bid, day = require_brand_id(), dt.timedelta(days=1)
        cur = active_members(bid, first=period.start, last=period.today - day, today=period.today)
        prev = active_members(bid, first=period.prev_start, last=period.start - day)
        if cur is not None and prev is not None:
            return cur, prev
    cur = PointsEntry.local_day >= period.start
    stmt = select(
        func.count(distinct(PointsEntry.member_id)).filter(cur),
        func.count(distinct(PointsEntry.member_id)).filter(~cur),
    ).where(
        PointsEntry.local_day >= period.prev_start,
        PointsEntry.local_day < period.end,
        PointsEntry.kind.in_(ACTIVE_KINDS),
    )
    cur_n, prev_n = db.session.execute(_store_members(stmt, PointsEntry.member_id, store_id)).one()
    return int(cur_n), int(prev_n)


def overview_outstanding(*, store_id: int | None, tz: str | None = None) -> int:
    """Points the brand owes right now (available plus pending) to all or one store's members."""
    if store_id is None:
        sql = "SELECT coalesce(sum(d_balance + d_pending), 0) FROM {rel} u"
        return int(rollups.query(POINTS_DAY.name, sql, tz=tz or "UTC")[0][0])
    stmt = select(func.coalesce(func.sum(PointsAccount.balance + PointsAccount.pending), 0))
    return int(db.session.scalar(_store_members(stmt, PointsAccount.member_id, store_id)))
