"""Guides' leaderboards (排行榜) for a month, in a store or a region (``Store.region``), and a
guide's rank, from the daily performance rollup (``GuideSalesDay``): one bounded query over one
month's rows of one store or region, never the performance ledger."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select

from core.db import db
from guide_distribution.models import GuideSalesDay
from guide_distribution.targets import month_start, next_month
from org.models import Staff, Store

LIMIT = 100


@dataclasses.dataclass(frozen=True)
class Entry:
    rank: int
    guide_id: int
    name: str
    store_name: str
    net_fen: int
    orders: int


def board(
    *, month: dt.date, store_id: int | None = None, region: str | None = None, limit: int = LIMIT
) -> list[Entry]:
    """The month's guides by net sales (sales - refunds) credited to the store, or to the
    stores of the region; equal sales share a rank."""
    if store_id is None and not region:
        return []
    start = month_start(month)
    net = func.sum(GuideSalesDay.sales_fen - GuideSalesDay.refunded_fen)
    stmt = (
        select(GuideSalesDay.guide_id, net.label("net"), func.sum(GuideSalesDay.orders))
        .where(GuideSalesDay.day >= start, GuideSalesDay.day < next_month(start))
        .group_by(GuideSalesDay.guide_id)
        .order_by(net.desc(), GuideSalesDay.guide_id)
        .limit(limit)
    )
    if store_id is not None:
        stmt = stmt.where(GuideSalesDay.store_key == store_id)
    else:
        stmt = stmt.where(
            GuideSalesDay.store_key.in_(select(Store.id).where(Store.region == region))
        )
    rows = db.session.execute(stmt).all()
    ids = [r[0] for r in rows]
    people = (
        {
            s.id: (s.name, s.store.name if s.store else "")
            for s in db.session.execute(select(Staff).where(Staff.id.in_(ids))).scalars()
        }
        if ids
        else {}
    )
    out: list[Entry] = []
    for i, (guide_id, net_fen, orders) in enumerate(rows):
        rank = out[-1].rank if out and out[-1].net_fen == int(net_fen) else i + 1
        name, store_name = people.get(guide_id, ("", ""))
        out.append(Entry(rank, guide_id, name, store_name, int(net_fen), int(orders or 0)))
    return out


def rank_of(entries: list[Entry], guide_id: int) -> Entry | None:
    return next((e for e in entries if e.guide_id == guide_id), None)
