"""Reads of the guide's workbench and the console: performance from the daily rollup, the
orders credited to a guide or a store, bound customers, tasks and materials.

Who sees what (``Viewer``): a guide their own; a store manager their store's; a brand admin
the brand's."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Select, func, select

from core.db import db
from guide_distribution.models import (
    CustomerBinding,
    GuideSalesDay,
    GuideTask,
    GuideTaskAssignee,
    Material,
    OrderAttribution,
)
from members.models import Member
from org.models import Staff, Store
from shop.models import Order


@dataclasses.dataclass(frozen=True)
class Viewer:
    guide_id: int | None = None
    store_id: int | None = None
    whole_brand: bool = False

    @classmethod
    def of(cls, staff) -> Viewer:
        if staff.role == "guide":
            return cls(guide_id=staff.id)
        if staff.role == "store_manager":
            return cls(store_id=staff.store_id or -1)
        return cls(whole_brand=staff.role in ("brand_admin", "platform_admin"))


@dataclasses.dataclass(frozen=True)
class Performance:
    orders: int = 0
    sales_fen: int = 0
    refunded_fen: int = 0

    @property
    def net_fen(self) -> int:
        return self.sales_fen - self.refunded_fen


def performance(
    *, start: dt.date, end: dt.date, guide_id: int | None = None, store_id: int | None = None
) -> Performance:
    """Orders, sales and refunds credited over [start, end) to a guide, or to a store."""
    stmt = select(
        func.coalesce(func.sum(GuideSalesDay.orders), 0),
        func.coalesce(func.sum(GuideSalesDay.sales_fen), 0),
        func.coalesce(func.sum(GuideSalesDay.refunded_fen), 0),
    ).where(GuideSalesDay.day >= start, GuideSalesDay.day < end)
    if guide_id is not None:
        stmt = stmt.where(GuideSalesDay.guide_id == guide_id)
    if store_id is not None:
        stmt = stmt.where(GuideSalesDay.store_key == store_id)
    orders, sales, refunded = db.session.execute(stmt).one()
    return Performance(int(orders), int(sales), int(refunded))


def orders_for(viewer: Viewer) -> Select:
    """Orders credited to the viewer (newest first by ``OrderAttribution.id``)."""
    stmt = select(OrderAttribution, Order).join(Order, Order.id == OrderAttribution.order_id)
    if viewer.guide_id is not None:
        return stmt.where(OrderAttribution.guide_id == viewer.guide_id)
    stmt = stmt.where(OrderAttribution.guide_id.is_not(None))
    if viewer.store_id is not None:
        return stmt.where(OrderAttribution.guide_store_id == viewer.store_id)
    return stmt if viewer.whole_brand else stmt.where(False)


def bound_for(viewer: Viewer) -> Select:
    """Customers bound to the viewer (the guide) or to the viewer's store, with the member."""
    stmt = select(CustomerBinding, Member).join(Member, Member.id == CustomerBinding.member_id)
    if viewer.guide_id is not None:
        return stmt.where(CustomerBinding.guide_id == viewer.guide_id)
    if viewer.store_id is not None:
        return stmt.where(CustomerBinding.store_id == viewer.store_id)
    return stmt if viewer.whole_brand else stmt.where(False)


def last_orders(member_ids) -> dict[int, Order]:
    """Each member's latest paid order (members without one are left out)."""
    ids = list({i for i in member_ids if i})
    if not ids:
        return {}
    rows = db.session.execute(
        select(Order)
        .where(Order.member_id.in_(ids), Order.paid_at.is_not(None))
        .order_by(Order.member_id, Order.paid_at.desc(), Order.id.desc())
        .distinct(Order.member_id)
    ).scalars()
    return {o.member_id: o for o in rows}


def tasks_of_guide(guide_id: int) -> Select:
    return (
        select(GuideTask, GuideTaskAssignee)
        .join(GuideTaskAssignee, GuideTaskAssignee.task_id == GuideTask.id)
        .where(GuideTaskAssignee.guide_id == guide_id)
    )


def open_tasks_count(guide_id: int, now: dt.datetime) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(GuideTaskAssignee)
        .join(GuideTask, GuideTask.id == GuideTaskAssignee.task_id)
        .where(
            GuideTaskAssignee.guide_id == guide_id,
            GuideTaskAssignee.done_at.is_(None),
            GuideTask.deadline > now,
        )
    ).scalar_one()


def materials(*, active_only: bool) -> Select:
    stmt = select(Material)
    return stmt.where(Material.active.is_(True)) if active_only else stmt


def tasks() -> Select:
    return select(GuideTask)


def assignees(task_id: int) -> Select:
    return (
        select(GuideTaskAssignee, Staff.name)
        .join(Staff, Staff.id == GuideTaskAssignee.guide_id)
        .where(GuideTaskAssignee.task_id == task_id)
    )


def store_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(Store.id, Store.name).where(Store.id.in_(ids))).all())


def guides(*, store_id: int | None = None) -> list[Staff]:
    stmt = select(Staff).where(Staff.role == "guide", Staff.active.is_(True))
    if store_id is not None:
        stmt = stmt.where(Staff.store_id == store_id)
    return list(db.session.execute(stmt.order_by(Staff.store_id, Staff.id).limit(2000)).scalars())


def stores() -> list[Store]:
    return list(
        db.session.execute(select(Store).where(Store.active.is_(True)).order_by(Store.id)).scalars()
    )
