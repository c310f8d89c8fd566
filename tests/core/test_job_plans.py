"""The periodic jobs read what is due through an index made for it, never by scanning every
brand's rows or a brand's whole history: each job runs, its statements on the tables below
are caught as sent, and PostgreSQL's plan for each (sequential scans ruled out, so that the
plan shows the index it would use on a table of millions) names the index."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from core.db import db
from core.tenancy import use_brand
from tests import factories
from tests.support.statements import Statements


def _plans(statements: Statements, table: str) -> list[str]:
    """PostgreSQL's plan of each statement sent that names ``table``."""
    plans = []
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements.sent:
            if not re.search(rf"\b{table}\b", statement):
                continue
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            plans.append("\n".join(r[0] for r in rows))
        conn.rollback()
    return plans


def _run(name: str):
    import importlib

    module, func = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), func)


def _coupons_of_years(brand) -> None:
    """Reminders on, and 5,000 coupons used or reminded long ago: the brand's history, which
    the reminder must not read again every hour."""
    from coupons.models import CouponSettings

    db.session.add(CouponSettings(brand_id=brand.id, remind_template_id="t", remind_days=3))
    template = factories.coupon_template().id
    member = factories.member().id
    db.session.execute(
        text(
            "INSERT INTO coupon (brand_id, template_id, member_id, code, status, source,"
            " issued_at, issued_day, valid_from, valid_until, reminded_at)"
            " SELECT :b, :t, :m, 'Y' || g, CASE WHEN g % 2 = 0 THEN 'used' ELSE 'available' END,"
            " 'bench', now(), current_date, now(), now() + interval '2 days', now()"
            " FROM generate_series(1, 5000) g"
        ),
        {"b": brand.id, "t": template, "m": member},
    )
    db.session.commit()
    db.session.execute(text("ANALYZE coupon"))


JOBS = [
    # (job, the table its due rows are read from, the index that finds them, the column the
    # index narrows on: a brand's own rows, or the due ones across brands)
    ("points.jobs.release_all", "points_lot", "ix_points_lot_release", "brand_id"),
    ("points.jobs.expire_all", "points_lot", "ix_points_lot_open_expiry", "brand_id"),
    ("points.jobs.remind_all", "points_lot", "ix_points_lot_open_expiry", "brand_id"),
    ("points.jobs.sync_all", "points_account", "ix_points_account_sync_due", "brand_id"),
    # any of the order's brand-leading indexes (status or store next): the brand's own rows
    ("shop.jobs_aftersale.fulfilment_all", "shop_order", None, "brand_id = brand.id"),
    (
        "shop.jobs_aftersale.refunds_query_all",
        "shop_refund",
        "ix_shop_refund_processing",
        "created_at",
    ),
    (
        "guide_distribution.jobs_commission.settle_all",
        "guide_commission_line",
        "ix_guide_commission_line_frozen",
        "brand_id",
    ),
    (
        "guide_distribution.jobs_commission.query_transfers_all",
        "guide_payout",
        "ix_guide_payout_in_flight",
        "updated_at",
    ),
    ("coupons.jobs.remind_expiring", "coupon", "ix_coupon_remind_due", "brand_id"),
    ("core.housekeeping.purge_finished_jobs", "outbox_job", "ix_outbox_job_due", "available_at"),
]


def _index_cond(plan: str, index: str | None) -> str:
    """The ``Index Cond`` of the plan's node that reads ``index`` ("" if it has none); with
    None, those of every index the plan reads."""
    lines, found = plan.splitlines(), []
    for at, line in enumerate(lines):
        if f"using {index} " in line or (index is None and " using " in line):
            for below in lines[at + 1 :]:
                if "->" in below:
                    break
                if "Index Cond:" in below:
                    found.append(below)
    return "\n".join(found)


@pytest.mark.parametrize(("job", "table", "index", "column"), JOBS, ids=[j[0] for j in JOBS])
def test_a_periodic_job_finds_its_due_rows_through_its_index(ctx, job, table, index, column):
    brand = factories.brand()
    with use_brand(brand.id):
        if job == "coupons.jobs.remind_expiring":
            _coupons_of_years(brand)
        db.session.commit()
    with Statements() as sent:
        _run(job)()
        db.session.commit()
    plans = _plans(sent, table)
    assert plans, f"{job} read nothing from {table}"
    for plan in plans:
        assert column in _index_cond(plan, index), plan


def test_the_hourly_game_figures_read_the_new_players_only(ctx):
    from games import jobs

    with Statements() as sent:
        jobs.refresh_stats(1)
        db.session.commit()
    (plan,) = _plans(sent, "game_player")
    assert "first_play_at" in _index_cond(plan, "ix_game_player_first_play"), plan


def test_the_hourly_lapsed_tag_reads_only_the_members_past_its_mark(ctx):
    """Past its first run, a brand's lapsed tag reads the members whose last purchase (or,
    never having bought, activation) lies between its mark and the new cutoff."""
    import datetime as dt

    from members.tiers_tags import tags

    brand = factories.brand()
    with use_brand(brand.id):
        tags.tag_lapsed(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        db.session.commit()
        with Statements() as sent:
            tags.tag_lapsed()
            db.session.commit()
    (plan,) = _plans(sent, "member")
    assert "last_purchase_at >=" in _index_cond(plan, "ix_member_lapse"), plan
    assert "activated_at >=" in _index_cond(plan, "ix_member_lapse_never_bought"), plan


def test_a_closed_month_of_guide_statements_is_not_closed_again(ctx):
    """The statements job comes back every six hours: a month closed already is found by
    its index and the commission ledger is not read again."""
    import datetime as dt

    from guide_distribution import payouts
    from guide_distribution.models import CommissionStatement

    brand = factories.brand()
    month = dt.date(2026, 11, 1)
    with use_brand(brand.id):
        db.session.add(CommissionStatement(guide_id=1, month=month))
        db.session.commit()
        with Statements() as sent:
            assert payouts.close_month(month) == 0
            db.session.commit()
    assert _plans(sent, "guide_commission_entry") == []
    (plan,) = _plans(sent, "guide_commission_statement")
    assert "month" in _index_cond(plan, "ix_guide_commission_statement_month"), plan
