"""WeChat sync and notifications by jobs, the merge handler, the welcome gift, the demo."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select, text

from core import jobs
from core.db import db
from core.tenancy import use_brand
from members.activation import activate_member
from members.identities import attach_identity
from members.merge import merge_members
from points import ledger, rules, services
from points.models import PointsAccount, PointsEntry, PointsLot
from tests import factories
from tests.support.points import T0, check_invariants
from tests.support.statements import Statements
from wechat.sandbox import store


def _templates(brand, consumer):
    return [
        m for m in store.messages(brand.appid, consumer["openid"]) if m.get("via") == "template"
    ]


def _sync_rows():
    return (
        db.session.execute(
            select(jobs.OutboxJob).where(jobs.OutboxJob.func == "points.jobs.sync_members")
        )
        .scalars()
        .all()
    )


def test_changes_are_notified_by_a_batched_retried_job(wx_brand, wx_consumer, monkeypatch):
    # One sync job per brand and 10-second slot: the three changes below stay in one slot
    # however slowly a loaded machine runs them.
    monkeypatch.setattr(ledger, "sync_key", lambda brand_id: f"points:sync:{brand_id}:slot")
    with use_brand(wx_brand.id):
        rules.update_settings(pending_days=0, change_template_id="tpl-points")
        member = factories.member().id
        attach_identity(member_id=member, kind="oa_openid", value=wx_consumer["openid"])
        # Three changes in one request: one job, one message with the sum.
        for i in range(3):
            services.earn_for_purchase(member_id=member, amount_fen=10_000, idempotency_key=f"o{i}")
        db.session.commit()
        rows = _sync_rows()
        assert len(rows) == 1
        # WeChat fails once: the job is retried later and sends one message.
        store.inject_fault("/cgi-bin/message/template/send", errcode=-1)
        assert jobs.run_outbox_job(rows[0].id) == "error"
        db.session.expire_all()
        assert rows[0].status == jobs.RETRY
        assert _templates(wx_brand, wx_consumer) == []
        assert jobs.run_outbox_job(rows[0].id) == "done"
        sent = _templates(wx_brand, wx_consumer)
        assert len(sent) == 1
        # WeChat shows no first/remark: what the member needs is in the keywords.
        assert sent[0]["data"] == {
            "keyword1": {"value": "+300"},
            "keyword2": {"value": "300"},
            "keyword3": {"value": "获得积分"},
            "keyword4": {"value": "0"},
        }
        # A sweep finds nothing left to tell.
        sweep = jobs.enqueue("points.jobs.sync_members", wx_brand.id, brand_id=wx_brand.id)
        db.session.commit()
        assert jobs.run_outbox_job(sweep) == "done"
        assert len(_templates(wx_brand, wx_consumer)) == 1
        account = db.session.execute(select(PointsAccount)).scalar_one()
        assert account.synced_entry_id == account.last_entry_id


def test_expiring_points_reminder_sent_once(wx_brand, wx_consumer):
    from points import jobs as points_jobs

    with use_brand(wx_brand.id):
        rules.update_settings(
            pending_days=0, expiry_months=1, remind_days=7, expiring_template_id="tpl-exp"
        )
        member = factories.member().id
        attach_identity(member_id=member, kind="oa_openid", value=wx_consumer["openid"])
        now = dt.datetime.now(dt.UTC)
        services.earn_for_purchase(
            member_id=member,
            amount_fen=8_800,
            occurred_at=now - dt.timedelta(days=27),
            idempotency_key="o",
            now=now,
        )
        db.session.commit()
        for _ in range(2):
            row = jobs.enqueue(points_jobs.remind_brand, wx_brand.id, brand_id=wx_brand.id)
            db.session.commit()
            assert jobs.run_outbox_job(row) == "done"
        sent = [m for m in _templates(wx_brand, wx_consumer) if m["template_id"] == "tpl-exp"]
        assert len(sent) == 1
        assert sent[0]["data"]["keyword1"]["value"] == "88"
        assert "first" not in sent[0]["data"] and "remark" not in sent[0]["data"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sent[0]["data"]["keyword2"]["value"])
        assert sent[0]["data"]["keyword3"]["value"] == "88"  # the balance left


def test_merge_moves_points_with_exact_counts(brand):
    rules.update_settings(pending_days=0)
    kept, merged = factories.member().id, factories.member().id
    services.earn_for_purchase(member_id=kept, amount_fen=5_000, idempotency_key="k1", now=T0)
    services.earn_for_purchase(member_id=merged, amount_fen=7_000, idempotency_key="m1", now=T0)
    services.earn_for_purchase(member_id=merged, amount_fen=1_000, idempotency_key="m2", now=T0)
    db.session.commit()
    record = merge_members(kept_id=kept, merged_id=merged, reason="same phone")
    db.session.commit()
    assert record.counts["ledger_accounts"] == 1
    assert record.counts["ledger_lots"] == 2
    assert record.counts["ledger_entries"] == 2
    assert record.counts["ledger_points"] == 80
    assert services.balance(kept).balance == 130
    check_invariants(kept)
    gone = db.session.execute(
        select(PointsAccount).where(PointsAccount.member_id == merged)
    ).scalar_one()
    assert (gone.balance, gone.pending, gone.debt) == (0, 0, 0)
    lots = db.session.execute(
        select(func.count()).select_from(PointsLot).where(PointsLot.account_id == gone.id)
    ).scalar_one()
    assert lots == 0
    # The merged member's order can still be refunded: its entry now belongs to the kept one.
    services.refund(
        original_key="m1", refunded_fen=7_000, order_total_fen=7_000, idempotency_key="r"
    )
    db.session.commit()
    assert services.balance(kept).balance == 60
    check_invariants(kept)


def test_welcome_points_on_activation(brand):
    rules.update_settings(welcome_points=100, pending_days=0)
    db.session.commit()
    member, created = activate_member(
        phone="13811112222", source="oa", consent_version="v1", oa_openid="o" + "x" * 27
    )
    db.session.commit()
    assert created
    again, created = activate_member(
        phone="13811112222", source="oa", consent_version="v1", oa_openid="o" + "x" * 27
    )
    db.session.commit()
    assert services.balance(member.id).balance == 100
    kinds = db.session.execute(select(PointsEntry.kind)).scalars().all()
    assert kinds == ["welcome"]


def test_demo_step_is_idempotent(runner, ctx):
    from core.cli import DEMO_STEPS

    assert any(order == 40 for order, _ in DEMO_STEPS)
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    from org.models import Brand

    brand = Brand.by_slug("demo")
    with use_brand(brand.id):
        s = rules.get_settings()
        assert s.welcome_points == 100
        counts = db.session.execute(
            select(PointsEntry.kind, func.count()).group_by(PointsEntry.kind)
        ).all()
        for member_id in db.session.execute(select(PointsAccount.member_id)).scalars():
            check_invariants(member_id)
    assert "Points:" in second.output
    assert all(n > 0 for _, n in counts) or counts == []


def test_member_card_bonus_follows_the_ledger(wx_brand, wx_consumer):
    from members.models import MemberCardCode
    from wechat import gateway
    from wechat.sandbox import api_mp

    with use_brand(wx_brand.id):
        rules.update_settings(pending_days=0, change_template_id="tpl-points")
        member = factories.member().id
        attach_identity(member_id=member, kind="oa_openid", value=wx_consumer["openid"])
        card_id = gateway.create_member_card(
            wx_brand.id, {"card_type": "MEMBER_CARD", "member_card": {"base_info": {"title": "卡"}}}
        )
        code = api_mp.give_card(wx_brand.appid, wx_consumer["openid"], card_id)
        gateway.activate_member_card(
            wx_brand.id, code=code, card_id=card_id, membership_number="M1"
        )
        db.session.add(
            MemberCardCode(
                card_id=card_id,
                code=code,
                openid=wx_consumer["openid"],
                member_id=member,
                activated_at=T0,
            )
        )
        services.earn_for_purchase(member_id=member, amount_fen=12_300, idempotency_key="c1")
        db.session.commit()
        (row,) = _sync_rows()
        assert jobs.run_outbox_job(row.id) == "done"
        assert store.get_doc("card_code", wx_brand.appid, code)["bonus"] == 123


def _consumer(brand, name):
    consumer = store.create_consumer(name)
    openid = store.openid_for(brand.appid, consumer["uid"])
    store.set_following(brand.appid, openid, True)
    return openid


def test_one_sync_tells_every_due_member_in_the_same_few_statements(wx_brand):
    """Members with a card and an openid, an openid only, or neither: each told once with
    their own balance, every account synced, another brand's due account left to its own
    sync; and the batch costs the same statements for 3 members as for 24."""
    from members.models import MemberCardCode
    from points import jobs as points_jobs
    from wechat import gateway
    from wechat.sandbox import api_mp

    other = factories.brand()
    with use_brand(other.id):
        rules.update_settings(pending_days=0)
        stranger = factories.member().id
        services.earn_for_purchase(member_id=stranger, amount_fen=500, idempotency_key="x")
    with use_brand(wx_brand.id):
        rules.update_settings(pending_days=0, change_template_id="tpl-points")
        card_id = gateway.create_member_card(
            wx_brand.id, {"card_type": "MEMBER_CARD", "member_card": {"base_info": {"title": "卡"}}}
        )
    db.session.commit()

    def due_members(count, start):
        made = []
        with use_brand(wx_brand.id):
            for i in range(start, start + count):
                member = factories.member().id
                openid, code = None, None
                if i % 3 != 2:  # two in three follow the official account
                    openid = _consumer(wx_brand, f"会员{i}")
                    attach_identity(member_id=member, kind="oa_openid", value=openid)
                if i % 3 == 0:  # one in three holds the card too
                    code = api_mp.give_card(wx_brand.appid, openid, card_id)
                    gateway.activate_member_card(
                        wx_brand.id, code=code, card_id=card_id, membership_number=f"M{i}"
                    )
                    db.session.add(
                        MemberCardCode(
                            card_id=card_id,
                            code=code,
                            openid=openid,
                            member_id=member,
                            activated_at=T0,
                        )
                    )
                amount = 1_000 * (i + 1)
                services.earn_for_purchase(
                    member_id=member, amount_fen=amount, idempotency_key=f"s{i}"
                )
                made.append((member, openid, code, amount // 100))
        db.session.commit()
        return made

    def sync():
        with Statements() as sent:
            assert points_jobs.sync_members(wx_brand.id) == len(made)
        db.session.commit()
        return len(sent)

    made = due_members(3, 0)
    few = sync()
    made = due_members(24, 3)
    many = sync()
    assert many == few

    for _member, openid, code, points in made:
        if openid is not None:
            (told,) = [
                m for m in store.messages(wx_brand.appid, openid) if m.get("via") == "template"
            ]
            assert told["data"]["keyword1"]["value"] == f"+{points}"
            assert told["data"]["keyword2"]["value"] == str(points)
        if code is not None:
            assert store.get_doc("card_code", wx_brand.appid, code)["bonus"] == points
    with use_brand(wx_brand.id):
        assert (
            db.session.scalars(select(PointsAccount.id).where(PointsAccount.sync_due)).all() == []
        )
    with use_brand(other.id):
        (due,) = db.session.scalars(select(PointsAccount).where(PointsAccount.sync_due))
        assert due.member_id == stranger


def test_the_sync_finds_a_brands_few_due_accounts_through_its_index(brand):
    """Of 20,000 accounts 3 are due: the planner reads the partial index, not every account
    of the brand (a brand of a million members made the sync scan them all)."""
    rules.update_settings(pending_days=0)
    db.session.execute(
        text(
            "INSERT INTO member (brand_id, card_no, name, gender, source, status, created_at,"
            " updated_at) SELECT :b, 'IX' || g, '', '', 'import', 'active', now(), now()"
            " FROM generate_series(1, 20000) g"
        ),
        {"b": brand.id},
    )
    db.session.execute(
        text(
            "INSERT INTO points_account (brand_id, member_id, balance, pending, debt,"
            " lifetime_earned, lifetime_spent, lifetime_expired, last_entry_id, synced_entry_id,"
            " updated_at, created_at)"
            " SELECT :b, m.id, 0, 0, 0, 0, 0, 0, 5, 5, now(), now()"
            " FROM member m WHERE m.brand_id = :b"
        ),
        {"b": brand.id},
    )
    for i in range(3):
        member = factories.member().id
        services.earn_for_purchase(member_id=member, amount_fen=100, idempotency_key=f"d{i}")
    db.session.commit()
    db.session.execute(text("ANALYZE points_account"))
    query = "SELECT * FROM points_account WHERE brand_id = :b AND sync_due ORDER BY id LIMIT 200"
    plan = "\n".join(db.session.execute(text("EXPLAIN " + query), {"b": brand.id}).scalars())
    assert "ix_points_account_sync_due" in plan
    assert len(db.session.execute(text(query), {"b": brand.id}).all()) == 3


def test_the_periodic_runs_start_a_job_only_for_brands_with_work_due(ctx):
    """Each periodic run enqueues its per-brand job for exactly the brands with something
    due: pending points to release, lots past their expiry, points expiring unreminded, a
    card sync; a brand with points and nothing due gets none."""
    from points import jobs as points_jobs

    now = dt.datetime.now(dt.UTC)
    brands = {}
    for name in ("release", "expire", "remind", "sync", "idle"):
        brand = factories.brand()
        with use_brand(brand.id):
            rules.update_settings(pending_days=0)
            member = factories.member().id
            services.earn_for_purchase(member_id=member, amount_fen=5_000, idempotency_key="o")
        brands[name] = brand.id
    db.session.commit()
    lots = PointsLot.__table__
    accounts = PointsAccount.__table__
    # Nothing due anywhere: synced, reminded, released, expiring in a year.
    db.session.execute(
        lots.update().values(reminded_at=now, expires_at=now + dt.timedelta(days=365))
    )
    db.session.execute(accounts.update().values(synced_entry_id=accounts.c.last_entry_id))
    due = {
        "release": {"released": False, "available_at": now - dt.timedelta(minutes=1)},
        "expire": {"expires_at": now - dt.timedelta(minutes=1)},
        "remind": {"reminded_at": None},
    }
    for name, values in due.items():
        db.session.execute(lots.update().where(lots.c.brand_id == brands[name]).values(**values))
    db.session.execute(
        accounts.update().where(accounts.c.brand_id == brands["sync"]).values(synced_entry_id=0)
    )
    db.session.execute(jobs.OutboxJob.__table__.delete())
    db.session.commit()

    runs = {
        "release": (points_jobs.release_all, "points.jobs.release_brand"),
        "expire": (points_jobs.expire_all, "points.jobs.expire_brand"),
        "remind": (points_jobs.remind_all, "points.jobs.remind_brand"),
        "sync": (points_jobs.sync_all, "points.jobs.sync_members"),
    }
    for name, (run, job_name) in runs.items():
        assert run() == 1
        db.session.commit()
        enqueued = db.session.scalars(
            select(jobs.OutboxJob.brand_id).where(jobs.OutboxJob.func == job_name)
        ).all()
        assert enqueued == [brands[name]], name


def test_expiry_reads_only_the_lots_still_holding_points(brand):
    """A brand of years: 20,000 lots spent or expired long ago and one past its expiry with
    points left. The periodic run's probe and the expiry's own read plan through the index of
    lots holding points (not through every lot of the brand), and the one lot expires."""
    from points import expiry
    from points import jobs as points_jobs

    rules.update_settings(pending_days=0)
    member = factories.member().id
    services.earn_for_purchase(member_id=member, amount_fen=5_000, idempotency_key="old")
    db.session.commit()
    lots = PointsLot.__table__
    db.session.execute(
        lots.update().values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    )
    db.session.execute(
        text(
            "INSERT INTO points_lot (brand_id, account_id, entry_id, amount, remaining, released,"
            " earned_at, available_at, expires_at)"
            " SELECT :b, a.id, 0, 10, 0, true, now() - interval '3 years',"
            " now() - interval '3 years', now() - interval '2 years' + g * interval '1 minute'"
            " FROM points_account a, generate_series(1, 20000) g WHERE a.brand_id = :b"
        ),
        {"b": brand.id},
    )
    db.session.commit()
    db.session.execute(text("ANALYZE points_lot"))
    db.session.commit()

    with Statements() as sent:
        assert points_jobs.expire_all() == 1
        assert expiry.expire_due() == 50
        db.session.commit()
    reads = [
        (s, p)
        for s, p in sent.sent
        if s.lstrip().startswith("SELECT") and "points_lot" in s and "expires_at <=" in s
    ]
    assert len(reads) >= 2
    for statement, parameters in reads:
        plan = "\n".join(
            row[0]
            for row in db.session.connection().exec_driver_sql("EXPLAIN " + statement, parameters)
        )
        assert "ix_points_lot_open_expiry" in plan, plan
    db.session.rollback()
