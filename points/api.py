"""Points in the mini-program API: balance, pending points, history and what expires when
(``/api/mp/<brand_slug>/points...``, documented in ``/api/mp/openapi.json``)."""

from __future__ import annotations

from flask import Blueprint, Flask

from core.api import api_operation
from members import api as mp
from points import queries
from points.schemas import (
    BalanceOut,
    ExpiringList,
    ExpiringOut,
    ExpiringQuery,
    HistoryOut,
    HistoryPageOut,
    HistoryQuery,
    PendingList,
    PendingOut,
)

bp = mp.mp_blueprint(Blueprint("points_mp", __name__, url_prefix="/api/mp/<brand_slug>"))
PREFIX = mp.PREFIX


@bp.get("/points")
@api_operation(
    "mp", "get", f"{PREFIX}/points", summary="The member's points", response=BalanceOut,
    errors=(403,),
)  # fmt: skip
def balance():
    b = queries.balance(mp.current_member().id)
    return BalanceOut(
        balance=b.balance,
        pending=b.pending,
        debt=b.debt,
        lifetime_earned=b.lifetime_earned,
        lifetime_spent=b.lifetime_spent,
        lifetime_expired=b.lifetime_expired,
    )


@bp.get("/points/pending")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/points/pending",
    summary="Points earned but locked until the return window closes",
    response=PendingList,
    errors=(403,),
)
def pending():
    rows = queries.pending_points(mp.current_member().id)
    items = [PendingOut(available_at=r.available_at, points=r.points) for r in rows]
    return PendingList(items=items, total=sum(r.points for r in rows))


@bp.get("/points/history")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/points/history",
    summary="The member's points entries, newest first (keyset-paginated by `before`)",
    query=HistoryQuery,
    response=HistoryPageOut,
    errors=(403,),
)
def history(query: HistoryQuery):
    lines = queries.history_before(
        mp.current_member().id, before_id=query.before, limit=query.limit + 1
    )
    more = len(lines) > query.limit
    lines = lines[: query.limit]
    items = [
        HistoryOut(
            id=x.id,
            kind=x.kind,
            points=x.points,
            reason=x.reason or "",
            occurred_at=x.occurred_at,
            store_id=x.store_id,
            amount_fen=x.amount_fen,
        )
        for x in lines
    ]
    return HistoryPageOut(items=items, next_before=lines[-1].id if more and lines else None)


@bp.get("/points/expiring")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/points/expiring",
    summary="Points still held, by expiry time, soonest first (the first `limit` times)",
    query=ExpiringQuery,
    response=ExpiringList,
    errors=(403,),
)
def expiring(query: ExpiringQuery):
    rows = queries.expiring_soon(
        mp.current_member().id, within_days=query.within_days, limit=query.limit + 1
    )
    return ExpiringList(
        items=[ExpiringOut(expires_at=r.expires_at, points=r.points) for r in rows[: query.limit]],
        has_more=len(rows) > query.limit,
    )


def init_app(app: Flask) -> None:
    mp.init_app(app, bp)
