"""Playing: what a member gets, pays and is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.db import db, utcnow
from core.tenancy import use_brand
from coupons.models import Coupon
from games import errors, queries, services
from games.models import GameDraw, GamePrize
from points import services as points
from tests import factories
from tests.games.conftest import make_campaign, player

ALWAYS_POINTS = [
    {"name": "20积分", "kind": "points", "points": 20, "value_fen": 20, "weight": 1},
    {"name": "谢谢参与", "kind": "none", "weight": 0},
]


def _play(campaign, member, key, **kw):
    draw = services.play(
        campaign_id=campaign.id, member_id=member.id, request_key=key, ip="10.0.0.1", **kw
    )
    db.session.commit()
    if draw.status == "pending_grant":
        draw = services.grant_draw(draw_id=draw.id)
        db.session.commit()
    return draw


def _give(member, n):
    points.adjust(member_id=member.id, points=n, reason="测试", idempotency_key=f"gift-{member.id}")
    db.session.commit()


def test_a_win_of_points_is_credited_once_and_a_replay_answers_the_same_draw(brand):
    c = make_campaign(prizes=ALWAYS_POINTS)
    m = player()
    first = _play(c, m, "k1")
    assert (first.prize_name, first.kind, first.status) == ("20积分", "points", "granted")
    again = _play(c, m, "k1")
    assert again.id == first.id
    assert points.balance(member_id=m.id).balance == 20
    assert db.session.scalar(select(func.count()).select_from(GameDraw)) == 1


def test_a_coupon_prize_lands_in_my_coupons(brand):
    tpl = factories.coupon_template()
    prizes = [
        {
            "name": "满100减10",
            "kind": "coupon",
            "coupon_template_id": tpl.id,
            "value_fen": 1000,
            "weight": 1,
            "stock": 5,
        },
        {"name": "谢谢参与", "kind": "none", "weight": 0},
    ]
    c = make_campaign(prizes=prizes)
    m = player()
    draw = _play(c, m, "k1")
    assert draw.status == "granted" and draw.coupon_id
    coupon = db.session.get(Coupon, draw.coupon_id)
    assert (coupon.member_id, coupon.template_id, coupon.source) == (m.id, tpl.id, "game")
    assert [d.id for d in queries.my_prizes(m.id)] == [draw.id]


def test_points_cost_free_plays_and_no_points(brand):
    c = make_campaign(prizes=ALWAYS_POINTS, cost_points=30, free_per_day=1)
    m = player()
    _give(m, 50)
    assert _play(c, m, "a").paid_with == "free"
    d = _play(c, m, "b")
    assert (d.paid_with, d.points_spent) == ("points", 30)
    # 50 + 20 + 20 (two wins) - 30 = 60: one more paid play, then not enough
    assert points.balance(member_id=m.id).balance == 60
    _play(c, m, "c")
    assert points.balance(member_id=m.id).balance == 50
    _play(c, m, "d")
    assert points.balance(member_id=m.id).balance == 40
    _play(c, m, "e")
    assert points.balance(member_id=m.id).balance == 30
    _play(c, m, "f")
    with pytest.raises(errors.NoPoints) as exc:
        services.play(campaign_id=c.id, member_id=m.id, request_key="g", ip=None)
    db.session.rollback()
    assert exc.value.code == "no_points"
    assert points.balance(member_id=m.id).balance == 20
    assert db.session.scalar(select(func.count()).select_from(GameDraw)) == 6


def test_plays_and_wins_limits_are_exact(brand):
    c = make_campaign(prizes=ALWAYS_POINTS, plays_per_day=3, wins_total=2)
    m = player()
    results = [_play(c, m, f"k{i}") for i in range(3)]
    assert [d.prize_name != "" and d.prize_id is not None for d in results] == [True, True, False]
    assert results[2].fallbacks == [[results[0].prize_id, "win_limit"]]
    with pytest.raises(errors.LimitReached):
        services.play(campaign_id=c.id, member_id=m.id, request_key="k3", ip=None)
    db.session.rollback()
    left = queries.plays_left(c.id, m.id)
    assert left.allowed_today == 0
    # the next day the daily limit opens again
    tomorrow = utcnow() + dt.timedelta(days=1)
    d = services.play(campaign_id=c.id, member_id=m.id, request_key="k4", ip=None, now=tomorrow)
    assert d.prize_id is None  # still over the total wins


def test_stock_runs_out_to_the_fallback_and_the_decision_is_recorded(brand):
    prizes = [
        {"name": "大奖", "kind": "points", "points": 100, "value_fen": 100, "weight": 1, "stock": 2,
         "fallback": 2},
        {"name": "小奖", "kind": "points", "points": 1, "value_fen": 1, "weight": 0},
    ]  # fmt: skip
    c = make_campaign(prizes=prizes)
    m = player()
    got = [_play(c, m, f"k{i}") for i in range(4)]
    assert [d.prize_name for d in got] == ["大奖", "大奖", "小奖", "小奖"]
    big = db.session.scalars(select(GamePrize).where(GamePrize.name == "大奖")).one()
    assert big.awarded == 2
    assert got[2].fallbacks == [[big.id, "stock"]]
    assert got[2].picked_prize_id == big.id


def test_daily_cap(brand):
    prizes = [{**ALWAYS_POINTS[0], "daily_cap": 1}, {"name": "谢谢", "kind": "none", "weight": 0}]
    c = make_campaign(prizes=prizes)
    m = player()
    assert _play(c, m, "a").prize_id is not None
    second = _play(c, m, "b")
    assert second.prize_id is None and second.fallbacks[0][1] == "daily_cap"
    tomorrow = utcnow() + dt.timedelta(days=1)
    third = services.play(campaign_id=c.id, member_id=m.id, request_key="c", ip=None, now=tomorrow)
    assert third.prize_id is not None


def test_budget_cap(brand):
    prizes = [
        {"name": "红包", "kind": "points", "points": 5, "value_fen": 500, "weight": 1},
        ALWAYS_POINTS[1],
    ]
    c = make_campaign(prizes=prizes, budget_fen=1000)
    m = player()
    got = [_play(c, m, f"k{i}") for i in range(3)]
    assert [d.prize_id is not None for d in got] == [True, True, False]
    assert got[2].fallbacks[0][1] == "budget"


def test_a_member_without_a_verified_phone_only_gets_thanks(brand):
    c = make_campaign(prizes=ALWAYS_POINTS)
    m = factories.member()  # not activated
    d = _play(c, m, "k")
    assert d.prize_id is None and d.fallbacks[0][1] == "not_activated"
    assert d.status == "lost"


def test_staff_are_excluded(brand):
    c = make_campaign(prizes=ALWAYS_POINTS)
    clerk = factories.staff(brand, phone="13900001111")
    m = player(phone=clerk.phone)
    with pytest.raises(errors.NotEligible):
        services.play(campaign_id=c.id, member_id=m.id, request_key="k", ip=None)


def test_only_the_chosen_stores_may_play(brand):
    store = factories.store(brand)
    c = make_campaign(prizes=ALWAYS_POINTS, store_ids=[store.id])
    m = player()
    with pytest.raises(errors.NotEligible):
        services.play(campaign_id=c.id, member_id=m.id, request_key="k", ip=None)


def test_outside_the_window_paused_and_ended(brand):
    now = utcnow()
    later = make_campaign(
        starts_at=now + dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=3)
    )
    m = player()
    with pytest.raises(errors.NotStarted):
        services.play(campaign_id=later.id, member_id=m.id, request_key="a", ip=None)
    c = make_campaign()
    with pytest.raises(errors.Ended):
        services.play(
            campaign_id=c.id, member_id=m.id, request_key="b", ip=None,
            now=now + dt.timedelta(days=40),
        )  # fmt: skip
    services.pause_campaign(campaign_id=c.id)
    db.session.commit()
    with pytest.raises(errors.Paused):
        services.play(campaign_id=c.id, member_id=m.id, request_key="c", ip=None)
    services.end_campaign(campaign_id=c.id)
    db.session.commit()
    with pytest.raises(errors.Ended):
        services.play(campaign_id=c.id, member_id=m.id, request_key="d", ip=None)
    draft = make_campaign(start=False)
    with pytest.raises(errors.NotStarted):
        services.play(campaign_id=draft.id, member_id=m.id, request_key="e", ip=None)


def test_another_brands_campaign_is_not_found(brand):
    c = make_campaign()
    other = factories.brand()
    with use_brand(other.id):
        m = player()
        with pytest.raises(errors.CampaignNotFound) as exc:
            services.play(campaign_id=c.id, member_id=m.id, request_key="k", ip=None)
        assert exc.value.status == 404


def test_a_request_key_of_another_campaign_is_refused(brand):
    a, b = make_campaign(), make_campaign()
    m = player()
    _play(a, m, "same")
    with pytest.raises(Exception) as exc:
        services.play(campaign_id=b.id, member_id=m.id, request_key="same", ip=None)
    assert getattr(exc.value, "status", None) == 409


def test_rate_limits_per_member_and_per_address_and_bursts_are_flagged(app, brand):
    app.config["GAMES_IP_RATE"] = 5
    app.config["GAMES_FLAG_PER_MINUTE"] = 3
    try:
        c = make_campaign()
        members = [player() for _ in range(6)]
        for i, m in enumerate(members[:5]):
            _play(c, m, f"k{i}")
        with pytest.raises(errors.GameRateLimited):
            services.play(campaign_id=c.id, member_id=members[5].id, request_key="x", ip="10.0.0.1")
        db.session.rollback()
        flags = queries.flags(c.id)
        assert flags and flags[0].ip == "10.0.0.1" and flags[0].plays >= 3
    finally:
        app.config["GAMES_IP_RATE"] = 600
        app.config["GAMES_FLAG_PER_MINUTE"] = 120


def test_preview_takes_nothing_and_is_not_counted(brand):
    prizes = [{**ALWAYS_POINTS[0], "stock": 1}, ALWAYS_POINTS[1]]
    c = make_campaign(prizes=prizes, start=False, cost_points=10)
    m = player()
    d = services.play(campaign_id=c.id, member_id=m.id, request_key="p1", ip=None, preview=True)
    db.session.commit()
    assert (d.status, d.preview, d.points_spent) == ("preview", True, 0)
    assert db.session.get(GamePrize, d.prize_id).awarded == 0
    assert queries.my_prizes(m.id) == []
    assert points.balance(member_id=m.id).balance == 0


def test_gift_address_and_store_pickup(brand):
    store = factories.store(brand)
    prizes = [
        {"name": "保温杯", "kind": "gift", "value_fen": 9900, "weight": 1, "stock": 5},
        ALWAYS_POINTS[1],
    ]
    c = make_campaign(prizes=prizes, pickup_store_ids=[store.id])
    m = player()
    d = _play(c, m, "a")
    assert d.status == "awaiting_address"
    with pytest.raises(Exception) as exc:
        services.submit_gift_address(draw_id=d.id, member_id=m.id, address={"name": "张三"})
    assert exc.value.status == 400
    d = services.submit_gift_address(
        draw_id=d.id,
        member_id=m.id,
        address={"name": "张三", "phone": "13900000000", "province": "上海", "city": "上海",
                 "detail": "南京西路1号"},
    )  # fmt: skip
    db.session.commit()
    assert d.status == "granted" and d.address["city"] == "上海"
    with pytest.raises(Exception) as exc:
        services.submit_gift_address(draw_id=d.id, member_id=m.id, address={"store_id": store.id})
    assert exc.value.status == 409
    d2 = _play(c, m, "b")
    d2 = services.submit_gift_address(draw_id=d2.id, member_id=m.id, address={"store_id": store.id})
    assert d2.address["store_name"] == store.name


def test_extra_plays_from_a_purchase_once_per_order(brand):
    c = make_campaign(prizes=ALWAYS_POINTS, free_per_day=0, cost_points=1000, extra_per_purchase=2)
    m = player()
    assert services.reward_purchase(order_id=77, member_id=m.id) == 1
    assert services.reward_purchase(order_id=77, member_id=m.id) == 0
    db.session.commit()
    assert queries.plays_left(c.id, m.id).extra == 2
    assert _play(c, m, "a").paid_with == "extra"
    assert _play(c, m, "b").paid_with == "extra"
    with pytest.raises(errors.NoPoints):
        services.play(campaign_id=c.id, member_id=m.id, request_key="c", ip=None)


def test_check_in_streak_and_rewards(brand):
    prizes = [
        {"name": "签到1积分", "kind": "points", "points": 1, "value_fen": 1, "streak_day": 1},
        {"name": "连签3天10积分", "kind": "points", "points": 10, "value_fen": 10, "streak_day": 3},
    ]
    c = make_campaign(kind="checkin", prizes=prizes, checkin_cycle=3)
    m = player()
    day0 = utcnow()
    got = []
    for i in range(4):
        r = services.check_in(
            campaign_id=c.id, member_id=m.id, request_key=f"d{i}", now=day0 + dt.timedelta(days=i)
        )
        db.session.commit()
        got.append((r.streak, r.draw.prize_name if r.draw.prize_id else ""))
        if r.draw.status == "pending_grant":
            services.grant_draw(draw_id=r.draw.id)
            db.session.commit()
    assert got == [(1, "签到1积分"), (2, ""), (3, "连签3天10积分"), (4, "签到1积分")]
    assert points.balance(member_id=m.id).balance == 12
    with pytest.raises(errors.AlreadyCheckedIn):
        services.check_in(
            campaign_id=c.id, member_id=m.id, request_key="again", now=day0 + dt.timedelta(days=3)
        )
    db.session.rollback()
    replay = services.check_in(
        campaign_id=c.id, member_id=m.id, request_key="d3", now=day0 + dt.timedelta(days=3)
    )
    assert replay.streak == 4
    # a gap restarts the streak
    r = services.check_in(
        campaign_id=c.id, member_id=m.id, request_key="d6", now=day0 + dt.timedelta(days=6)
    )
    assert r.streak == 1
