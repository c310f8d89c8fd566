"""Report rollups (core.rollups): the figures read from them equal the ledgers'.

The overview, the points report and the coupon report must give the same figures whether a
brand's rows are rolled up or not, across a day boundary of the brand's calendar, with an
entry committed after the rollup ran, with members and coupons that change after they were
counted, and while many transactions write the ledger as the job runs.
"""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo

import pytest
from sqlalchemy import func, select, text, update

from core import overview, rollups
from core.db import db, utcnow
from core.tenancy import use_brand
from coupons import queries as coupon_queries
from coupons.models import Coupon, CouponTemplate, Redemption
from members.models import Member
from points import queries as points_queries
from points import reports, services
from points import rollups as points_rollups
from points.models import PointsAccount, PointsEntry
from points.rollups import WINDOW_ENDS
from tests import factories
from tests.core.test_overview import build_world, figures
from tests.support.concurrency import run_concurrently

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
PERIODS = ("today", "7d", "30d")


@pytest.fixture
def no_margin(app, monkeypatch):
    """Roll up to this instant (the margin exists for clocks and transactions of other
    machines; the tests' transactions are all on this one)."""
    monkeypatch.setitem(app.config, "ROLLUP_MARGIN_SECONDS", 0)


@pytest.fixture
def world(ctx, no_margin):
    return build_world()


def _advance(brand) -> int:
    n = rollups.advance_brand(brand.id, brand.timezone)
    db.session.commit()
    return n


def _rebuild(brand) -> dict:
    counts = rollups.rebuild_brand(brand.id, brand.timezone)
    db.session.commit()
    return counts


def _rows(brand) -> dict[str, list]:
    """Every rollup table's rows of the brand, sorted."""
    out = {}
    for r in rollups.registered():
        cols = ", ".join(r.keys + r.values)
        sql = f"SELECT {cols} FROM {r.table} WHERE brand_id = :b ORDER BY {', '.join(r.keys)}"  # noqa: S608
        out[r.name] = [tuple(x) for x in db.session.execute(text(sql), {"b": brand.id}).all()]
    return out


def _reports(brand) -> dict:
    with use_brand(brand.id):
        out = {
            "liability": reports.liability(),
            "monthly": reports.monthly(months=3),
            "templates": coupon_queries.template_report(),
            "stores": coupon_queries.store_report(),
        }
        db.session.rollback()
    return out


def _ledger(brand) -> dict:
    """The same figures counted from the ledgers themselves."""
    with use_brand(brand.id):
        acc = db.session.execute(
            select(
                func.count(PointsAccount.id),
                func.sum(PointsAccount.balance),
                func.sum(PointsAccount.pending),
                func.sum(PointsAccount.debt),
            )
        ).one()
        status = db.session.execute(
            select(Coupon.template_id, Coupon.status, func.count()).group_by(
                Coupon.template_id, Coupon.status
            )
        ).all()
        done = db.session.execute(
            select(Redemption.store_id, func.count(), func.sum(Redemption.discount_fen))
            .where(Redemption.status == "done")
            .group_by(Redemption.store_id)
        ).all()
        db.session.rollback()
    return {
        "accounts": tuple(int(x or 0) for x in acc),
        "status": {(t, s): n for t, s, n in status},
        "done": {s: (n, int(f or 0)) for s, n, f in done},
    }


def _agrees(brand) -> None:
    """The reports built on the rollups say what the ledgers say."""
    rep, led = _reports(brand), _ledger(brand)
    li = rep["liability"]
    assert (li.members, li.balance, li.pending, li.debt) == led["accounts"]
    for t in rep["templates"]:
        assert t["redeemed"] == led["status"].get((t["id"], "redeemed"), 0)
        assert t["expired"] == led["status"].get((t["id"], "expired"), 0)
        assert t["issued"] == sum(n for (tid, _s), n in led["status"].items() if tid == t["id"])
    for s in rep["stores"]:
        assert (s["redeemed"], s["discount_fen"]) == led["done"].get(s["id"], (0, 0))
    assert rollups.check_brand(brand.id, brand.timezone) == []


def test_figures_are_the_same_before_and_after_rolling_up(client, world):
    brand = world["brand"]
    factories.login(client, brand, world["admin"])
    before = {p: figures(client, p) for p in PERIODS}
    reports_before = _reports(brand)
    _agrees(brand)

    counts = _rebuild(brand)
    assert counts["points_day"] > 0 and counts["member_day"] > 0
    assert counts["coupon_issued"] > 0 and counts["coupon_reversals"] == 1
    assert rollups.watermark("points_day", brand.id) > rollups.NEVER
    assert {p: figures(client, p) for p in PERIODS} == before
    assert _reports(brand) == reports_before
    _agrees(brand)

    # A store manager's figures too (members from the rollup, the rest by the store's members).
    factories.login(client, brand, world["manager"])
    assert figures(client, "7d")["new_members"] == 2


def test_rebuild_is_idempotent_and_equals_the_increments(world):
    brand = world["brand"]
    _advance(brand)
    with use_brand(brand.id):
        m = factories.member(phone="13700000099")
        services.adjust(member_id=m.id, points=40, reason="补录", idempotency_key="late-1")
        db.session.commit()
    _advance(brand)
    incremental = _rows(brand)
    _rebuild(brand)
    assert _rows(brand) == incremental
    _rebuild(brand)
    assert _rows(brand) == incremental
    since = utcnow().astimezone(TZ).date() - dt.timedelta(days=3)
    rollups.rebuild_brand(brand.id, brand.timezone, since=since)
    db.session.commit()
    assert _rows(brand) == incremental


def test_a_day_boundary_in_the_brands_time_zone(ctx, brand, no_margin):
    store = factories.store(brand)
    m = factories.member().id
    day = utcnow().astimezone(TZ).date() - dt.timedelta(days=2)
    # 23:59:59 and 00:00:00 in Shanghai: 15:59:59 and 16:00:00 UTC of the same UTC date.
    last = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=TZ).astimezone(dt.UTC)
    first = last + dt.timedelta(seconds=1)
    assert last.date() == first.date()
    services.adjust(member_id=m, points=7, reason="a", idempotency_key="b1", now=last)
    services.adjust(member_id=m, points=11, reason="b", idempotency_key="b2", now=first)
    tpl = CouponTemplate(name="满100减5", kind="cash", value_fen=500)
    db.session.add(tpl)
    db.session.flush()
    for i, at in enumerate((last, first)):
        c = Coupon(
            template_id=tpl.id,
            member_id=m,
            code=f"B{i}",
            status="redeemed",
            issued_at=utcnow(),
            issued_day=utcnow().astimezone(TZ).date(),
            valid_from=at,
            valid_until=utcnow() + dt.timedelta(days=30),
        )
        db.session.add(c)
        db.session.flush()
        db.session.add(
            Redemption(
                coupon_id=c.id,
                template_id=tpl.id,
                member_id=m,
                store_id=store.id,
                channel="staff",
                order_id=f"O{i}",
                order_amount_fen=10000,
                discount_fen=500,
                idempotency_key=f"rb{i}",
                created_at=at,
            )
        )
    db.session.commit()
    _advance(brand)
    points = db.session.execute(
        text("SELECT day, points_in FROM points_day_rollup WHERE brand_id = :b ORDER BY day"),
        {"b": brand.id},
    ).all()
    assert [tuple(r) for r in points] == [(day, 7), (day + dt.timedelta(days=1), 11)]
    reds = db.session.execute(
        text("SELECT day, n FROM coupon_redemption_rollup WHERE brand_id = :b ORDER BY day"),
        {"b": brand.id},
    ).all()
    assert [tuple(r) for r in reds] == [(day, 1), (day + dt.timedelta(days=1), 1)]
    _agrees(brand)


def test_an_entry_committed_after_the_rollup_ran_is_counted(app, ctx, brand, no_margin):
    m = factories.member().id
    services.adjust(member_id=m, points=100, reason="a", idempotency_key="e1")
    db.session.commit()
    account_id = db.session.scalar(select(PointsAccount.id).where(PointsAccount.member_id == m))
    # Another transaction writes an entry (and its account change) and stays open...
    other = db.engine.connect()
    tx = other.begin()
    other.execute(
        text(
            "INSERT INTO points_entry (brand_id, account_id, member_id, kind, idempotency_key,"
            " points, delta_balance, delta_pending, delta_debt, reason, occurred_at, local_day,"
            " created_at) VALUES (:b, :a, :m, 'adjust', 'late', 5, 5, 0, 0, 'x', now(),"
            " (now() AT TIME ZONE 'Asia/Shanghai')::date, now())"
        ),
        {"b": brand.id, "a": account_id, "m": m},
    )
    other.execute(
        text("UPDATE points_account SET balance = balance + 5 WHERE id = :a"), {"a": account_id}
    )
    # ... while the rollup runs: its watermark stops before that transaction began.
    _advance(brand)
    late_at = other.execute(text("SELECT now()")).scalar_one()
    assert rollups.watermark("points_day", brand.id) <= late_at
    tx.commit()
    other.close()
    _agrees(brand)  # read live until the next run
    assert reports.liability().balance == 105
    _advance(brand)
    _agrees(brand)
    rolled = db.session.execute(
        text("SELECT sum(d_balance) FROM points_day_rollup WHERE brand_id = :b"), {"b": brand.id}
    ).scalar_one()
    assert rolled == 105


def _active(brand, key: str) -> tuple[int, int]:
    """Active members of the period and of the one before, as the overview counts them."""
    with use_brand(brand.id):
        period = overview.make_period(key, now=utcnow(), tz=TZ)
        out = points_queries.overview_active(period=period, store_id=None)
        db.session.rollback()
    return out


def _active_ledger(brand, key: str) -> tuple[int, int]:
    with use_brand(brand.id):
        period = overview.make_period(key, now=utcnow(), tz=TZ)
        counts = []
        for lo, hi in ((period.start, period.end), (period.prev_start, period.start)):
            counts.append(
                db.session.scalar(
                    select(func.count(func.distinct(PointsEntry.member_id))).where(
                        PointsEntry.kind.in_(("earn", "spend")),
                        PointsEntry.local_day >= lo,
                        PointsEntry.local_day < hi,
                    )
                )
            )
        db.session.rollback()
    return tuple(counts)


def test_a_backdated_entry_lands_on_its_day_at_once(client, world):
    brand = world["brand"]
    _rebuild(brand)
    assert db.session.scalar(text("SELECT count(*) FROM points_active_rollup")) > 0
    factories.login(client, brand, world["admin"])
    before = figures(client, "7d")
    week_before = _active(brand, "7d")
    assert week_before == _active_ledger(brand, "7d")
    with use_brand(brand.id):
        m = db.session.scalar(select(Member.id).where(Member.phone == "13700000002"))
        three_days_ago = utcnow() - dt.timedelta(days=3)
        services.adjust(
            member_id=m, points=25, reason="补录", idempotency_key="bd", now=three_days_ago
        )
        # a purchase of ten days ago posted now: the member was active in the week before
        services.earn_for_purchase(
            member_id=m,
            amount_fen=5000,
            occurred_at=utcnow() - dt.timedelta(days=10),
            idempotency_key="bd-order",
        )
        db.session.commit()
    after = figures(client, "7d")
    assert after["points_issued"] == before["points_issued"] + 25
    assert _active(brand, "7d") == (week_before[0], week_before[1] + 1)
    for key in PERIODS:
        assert _active(brand, key) == _active_ledger(brand, key)
    _advance(brand)
    assert figures(client, "7d") == after
    for key in PERIODS:
        assert _active(brand, key) == _active_ledger(brand, key)
    _agrees(brand)


def test_members_and_coupons_changed_after_they_were_counted(client, world):
    brand = world["brand"]
    _rebuild(brand)
    factories.login(client, brand, world["admin"])
    week = figures(client, "7d")
    with use_brand(brand.id):
        # A member of three days ago turns out to be a duplicate and is merged away ...
        db.session.execute(
            update(Member).where(Member.phone == "13700000002").values(status="merged")
        )
        # ... and a redemption is reversed, the coupon past its validity: it becomes expired.
        red = db.session.scalars(select(Redemption).where(Redemption.status == "done")).first()
        now = utcnow()
        db.session.execute(
            update(Redemption)
            .where(Redemption.id == red.id)
            .values(status="reversed", reversed_at=now)
        )
        db.session.execute(
            update(Coupon)
            .where(Coupon.id == red.coupon_id)
            .values(status="expired", valid_until=now - dt.timedelta(seconds=1))
        )
        db.session.commit()
    changed = figures(client, "7d")
    assert changed["new_members"] == week["new_members"] - 1
    assert changed["coupons_redeemed"] == week["coupons_redeemed"] - 1
    _agrees(brand)
    _advance(brand)
    assert figures(client, "7d") == changed
    _agrees(brand)


def test_concurrent_ledger_writes_while_the_job_runs(app, ctx, brand, no_margin):
    members = [factories.member().id for _ in range(4)]
    for m in members:
        services.adjust(member_id=m, points=1000, reason="a", idempotency_key=f"seed{m}")
    db.session.commit()
    brand_id, tz = brand.id, brand.timezone
    stop = threading.Event()
    runs: list[int] = []

    def job() -> None:
        with app.app_context():
            while not stop.is_set():
                rollups.advance_brand(brand_id, tz)
                db.session.commit()
                runs.append(1)
            db.session.remove()

    runner = threading.Thread(target=job)
    runner.start()

    def write(i: int) -> int:
        for k in range(15):
            services.adjust(
                member_id=members[(i + k) % 4],
                points=(k % 5) - 1 or 3,
                reason="r",
                idempotency_key=f"c{i}-{k}",
            )
            db.session.commit()
        return i

    try:
        results = run_concurrently(app, brand_id, 8, write)
    finally:
        stop.set()
        runner.join(60)
    assert all(r[0] == "ok" for r in results), results
    assert len(runs) >= 2
    _advance(brand)
    _agrees(brand)
    entries = db.session.scalar(select(func.count()).select_from(PointsEntry))
    rolled = db.session.execute(
        text("SELECT sum(entries), sum(d_balance) FROM points_day_rollup WHERE brand_id = :b"),
        {"b": brand_id},
    ).one()
    balance = db.session.scalar(select(func.sum(PointsAccount.balance)))
    assert tuple(rolled) == (entries, balance)
    assert entries == 4 + 8 * 15


def test_the_command_line_checks_and_rebuilds(app, runner, world):
    brand = world["brand"]
    ok = runner.invoke(args=["rollups", "rebuild", "--brand", brand.slug])
    assert ok.exit_code == 0, ok.output
    assert runner.invoke(args=["rollups", "check", "--brand", brand.slug]).exit_code == 0
    db.session.execute(
        text("UPDATE points_day_rollup SET points_in = points_in + 1 WHERE brand_id = :b"),
        {"b": brand.id},
    )
    db.session.commit()
    bad = runner.invoke(args=["rollups", "check", "--brand", brand.slug])
    assert bad.exit_code == 1 and "points_day" in bad.output
    since = (utcnow().astimezone(TZ).date() - dt.timedelta(days=60)).isoformat()
    fixed = runner.invoke(args=["rollups", "rebuild", "--brand", brand.slug, "--since", since])
    assert fixed.exit_code == 0, fixed.output
    assert runner.invoke(args=["rollups", "check"]).exit_code == 0
    missing = runner.invoke(args=["rollups", "check", "--brand", "no-such-brand"])
    assert missing.exit_code != 0


def test_the_periodic_jobs_advance_and_check_every_brand(app, world, caplog):
    brand = world["brand"]
    rollups.advance_one(brand.id)
    assert rollups.watermark("coupon_issued", brand.id) > rollups.NEVER
    db.session.execute(
        text("UPDATE coupon_issued_rollup SET n = n + 1 WHERE brand_id = :b"), {"b": brand.id}
    )
    db.session.commit()
    assert rollups.check_one(brand.id) >= 1
    assert "rollup mismatch" in caplog.text


def test_active_member_windows_on_generated_activity(ctx, brand, no_margin):
    """Stored windows (counted in one pass for a rebuild, one day at a time by the job) equal
    distinct counts over the ledger, for members active on scattered days."""
    import random

    rng = random.Random(7)
    today = utcnow().astimezone(TZ).date()
    for i in range(30):
        m = factories.member().id
        acc = PointsAccount(member_id=m)
        db.session.add(acc)
        db.session.flush()
        for k, back in enumerate(sorted(rng.sample(range(0, 75), rng.randint(0, 6)))):
            db.session.add(
                PointsEntry(
                    account_id=acc.id,
                    member_id=m,
                    kind=rng.choice(("earn", "spend", "adjust")),
                    idempotency_key=f"g{i}-{k}",
                    points=1,
                    delta_balance=1,
                    occurred_at=utcnow(),
                    local_day=today - dt.timedelta(days=back),
                )
            )
    db.session.commit()
    _rebuild(brand)
    assert db.session.scalar(text("SELECT count(*) FROM points_active_rollup")) == 31 * 5
    assert rollups.check_brand(brand.id, brand.timezone) == []
    for key in PERIODS:
        assert _active(brand, key) == _active_ledger(brand, key)
    # The job's way (one day at a time) gives the same windows as the one-pass count.
    one_pass = db.session.execute(
        text("SELECT end_day, days, members FROM points_active_rollup ORDER BY 1, 2")
    ).all()
    db.session.execute(text("DELETE FROM points_active_rollup"))
    db.session.commit()
    for back in range(WINDOW_ENDS, 0, -1):
        end = today - dt.timedelta(days=back)
        for days, n in points_rollups._count_windows(brand.id, end, utcnow()).items():
            db.session.execute(
                text("INSERT INTO points_active_rollup VALUES (:b, :e, :d, :n, now())"),
                {"b": brand.id, "e": end, "d": days, "n": n},
            )
    db.session.commit()
    day_by_day = db.session.execute(
        text("SELECT end_day, days, members FROM points_active_rollup ORDER BY 1, 2")
    ).all()
    assert day_by_day == one_pass
