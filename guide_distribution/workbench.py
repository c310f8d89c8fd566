"""Guide distribution's part of the guide's workbench home: the month header (performance so
far, target and progress, rank in the store) and the tiles of its sections, registered into
``members.workbench``."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from core.db import utcnow
from guide_distribution import leaderboard, queries, targets
from members.workbench import (
    register_customer_view,
    register_workbench_panel,
    register_workbench_tile,
)
from shop import numbers


@dataclasses.dataclass(frozen=True)
class Month:
    month: dt.date
    performance: queries.Performance
    today: queries.Performance
    target_fen: int | None
    rank: int | None
    of: int

    @property
    def progress_pct(self) -> int | None:
        """Net sales as a share of the target, in whole percent (None without a target)."""
        if not self.target_fen:
            return None
        return max(self.performance.net_fen, 0) * 100 // self.target_fen


def month_of(*, guide_id: int, store_id: int | None, today: dt.date) -> Month:
    """The guide's month so far: performance, today, target and rank in the store."""
    start = targets.month_start(today)
    perf = queries.performance(start=start, end=today + dt.timedelta(days=1), guide_id=guide_id)
    day = queries.performance(start=today, end=today + dt.timedelta(days=1), guide_id=guide_id)
    board = leaderboard.board(month=start, store_id=store_id) if store_id else []
    mine = leaderboard.rank_of(board, guide_id)
    return Month(
        month=start,
        performance=perf,
        today=day,
        target_fen=targets.target_of(guide_id=guide_id, month=start),
        rank=mine.rank if mine else None,
        of=len(board),
    )


def _month_panel(staff) -> Markup | None:
    if staff.role != "guide":
        return None
    today = numbers.local_day()
    return Markup(  # noqa: S704 - our own template, autoescaped
        render_template(
            "guide_distribution/workbench/_month.html",
            m=month_of(guide_id=staff.id, store_id=staff.store_id, today=today),
            open_tasks=queries.open_tasks_count(staff.id, utcnow()),
        )
    )


def register() -> None:
    register_workbench_panel("guide_month", _month_panel, order=10)
    register_workbench_tile(
        "guide_workbench_shop.index", _l("My shop"), icon="shop", order=15, roles=("guide",)
    )
    register_workbench_tile(
        "guide_workbench_commission.index",
        _l("My commission"),
        icon="wallet",
        order=45,
        roles=("guide",),
    )
    register_workbench_tile(
        "guide_workbench.tasks", _l("HQ tasks"), icon="task", order=20, roles=("guide",)
    )
    register_workbench_tile("guide_workbench.materials", _l("Materials"), icon="image", order=30)
    register_workbench_tile("guide_workbench.orders", _l("My orders"), icon="order", order=40)
    register_workbench_tile(
        "guide_workbench.performance", _l("Performance"), icon="chart", order=50
    )
    register_workbench_tile(
        "guide_workbench.leaderboard", _l("Leaderboard"), icon="trophy", order=60
    )
    register_customer_view(
        "guide_workbench.customers", _l("Bound to me"), order=20, roles=("guide",)
    )
