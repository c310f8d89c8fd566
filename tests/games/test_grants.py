"""A worker killed between the draw and the grant: the prize is granted exactly once after
recovery, however many recoveries and retries race for it."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from coupons.models import Coupon
from games import jobs, services
from games.models import GameDraw
from points.models import PointsEntry
from tests import factories
from tests.games.conftest import make_campaign, play_and_die, player
from tests.support.concurrency import run_concurrently


def test_a_killed_worker_s_coupon_is_granted_exactly_once_after_recovery(app, brand):
    tpl = factories.coupon_template()
    prizes = [
        {"name": "券", "kind": "coupon", "coupon_template_id": tpl.id, "value_fen": 500,
         "weight": 1, "stock": 10},
        {"name": "谢谢参与", "kind": "none", "weight": 0},
    ]  # fmt: skip
    c = make_campaign(prizes=prizes)
    m = player()
    draw_id, status = play_and_die(brand.id, c.id, m.id, commit=True)
    assert status == "pending_grant"
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 0
    # the recovery job and late retries of the grant race for it
    results = run_concurrently(
        app,
        brand.id,
        8,
        lambda i: jobs.recover_grants(older_than_seconds=0)
        if i % 2
        else services.grant_draw(draw_id=draw_id).status,
    )
    assert all(r[0] == "ok" for r in results), results
    jobs.recover_grants(older_than_seconds=0)
    db.session.expire_all()
    coupons = db.session.scalars(select(Coupon)).all()
    assert len(coupons) == 1 and coupons[0].member_id == m.id
    draw = db.session.get(GameDraw, draw_id)
    assert (draw.status, draw.coupon_id) == ("granted", coupons[0].id)


def test_points_are_granted_once_by_the_periodic_recovery(app, brand):
    prizes = [
        {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 1},
        {"name": "谢谢参与", "kind": "none", "weight": 0},
    ]
    c = make_campaign(prizes=prizes)
    m = player()
    draw_id, _ = play_and_die(brand.id, c.id, m.id, commit=True)
    assert jobs.recover_grants(older_than_seconds=0) == 1
    assert jobs.recover_grants(older_than_seconds=0) == 0
    services.grant_draw(draw_id=draw_id)
    db.session.commit()
    entries = db.session.scalars(select(PointsEntry).where(PointsEntry.points == 50)).all()
    assert len(entries) == 1
    # a replay of the request answers the same, granted draw
    again = services.play(campaign_id=c.id, member_id=m.id, request_key="k1", ip=None)
    assert (again.id, again.status) == (draw_id, "granted")


def test_the_recovery_waits_for_the_play_s_own_grant(app, brand):
    c = make_campaign(
        prizes=[
            {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 1},
            {"name": "谢谢参与", "kind": "none", "weight": 0},
        ]
    )
    m = player()
    services.play(campaign_id=c.id, member_id=m.id, request_key="k", ip=None)
    db.session.commit()
    assert jobs.recover_grants() == 0  # younger than the grace period


def test_a_batch_grants_points_wins_together_and_coupons_each(app, brand):
    wheel = make_campaign(
        prizes=[
            {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 1},
            {"name": "谢谢参与", "kind": "none", "weight": 0},
        ]
    )
    tpl = factories.coupon_template()
    scratch = make_campaign(
        name="刮刮卡",
        prizes=[
            {"name": "券", "kind": "coupon", "coupon_template_id": tpl.id, "value_fen": 500,
             "weight": 1, "stock": 10},
            {"name": "谢谢参与", "kind": "none", "weight": 0},
        ],
    )  # fmt: skip
    members = [player() for _ in range(4)]
    draw_ids = []
    for i, (c, m) in enumerate(zip((wheel, wheel, wheel, scratch), members, strict=True)):
        draw = services.play(campaign_id=c.id, member_id=m.id, request_key=f"k{i}", ip=None)
        assert draw.status == "pending_grant"
        draw_ids.append(draw.id)
    members[2].status = "deleted"  # gone before the grant: refused by the points service
    db.session.commit()

    assert services.grant_draws(draw_ids=draw_ids) == 4
    db.session.commit()
    db.session.expire_all()
    draws = [db.session.get(GameDraw, i) for i in draw_ids]
    assert [d.status for d in draws] == ["granted", "granted", "grant_failed", "granted"]
    for d, m in zip(draws[:2], members, strict=False):
        entry = db.session.get(PointsEntry, d.points_entry_id)
        assert (entry.member_id, entry.points, entry.kind) == (m.id, 50, "game")
        assert (entry.idempotency_key, entry.reason) == (f"game-draw:{d.id}", "幸运大转盘")
        assert entry.operator is None and d.granted_at is not None
    assert draws[2].grant_error and draws[2].points_entry_id is None
    assert draws[2].granted_at is None
    assert draws[3].coupon_id == db.session.scalars(select(Coupon.id)).one()
    # Granted once: the draws are no longer pending.
    assert services.grant_draws(draw_ids=draw_ids) == 0
    assert db.session.scalar(select(func.count()).select_from(PointsEntry)) == 2


def test_a_recovery_batch_that_fails_is_granted_draw_by_draw(app, brand, monkeypatch):
    prizes = [
        {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 1},
        {"name": "谢谢参与", "kind": "none", "weight": 0},
    ]
    c = make_campaign(prizes=prizes)
    members = [player(), player()]
    draws = [play_and_die(brand.id, c.id, m.id, commit=True)[0] for m in members]

    def broken(**_kw):
        raise RuntimeError("the batch's statement failed")

    monkeypatch.setattr(services, "grant_draws", broken)
    assert jobs.recover_grants(older_than_seconds=0) == 2
    db.session.expire_all()
    assert [db.session.get(GameDraw, d).status for d in draws] == ["granted", "granted"]
    entries = db.session.scalars(select(PointsEntry).where(PointsEntry.points == 50)).all()
    assert sorted(e.member_id for e in entries) == sorted(m.id for m in members)
    assert {e.kind for e in entries} == {"game"}  # a game's prize, not a manual adjustment
    assert jobs.recover_grants(older_than_seconds=0) == 0
