"""Plays decided in Redis and written to PostgreSQL: a play whose request died between the
decision and its commit is written, paid and granted exactly once; counters Redis lost are
read back from PostgreSQL; writing a play twice counts it once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import db
from core.redis import get_redis
from games import jobs, ledger, live, services
from games.errors import LimitReached
from games.models import GameDraw, GamePlayer, GamePrize
from points import queries as points_queries
from points import services as points
from points.models import PointsEntry
from tests.games.conftest import make_campaign, play_and_die, player
from tests.support.concurrency import run_concurrently

POINTS_50 = {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 1}
THANKS = {"name": "谢谢参与", "kind": "none", "weight": 0}


def _balance(member_id: int) -> int:
    db.session.expire_all()
    return points_queries.balance(member_id).balance


def test_a_play_whose_request_died_before_its_commit_is_written_paid_and_granted_once(app, brand):
    c = make_campaign(prizes=[POINTS_50, THANKS], cost_points=10, plays_per_day=5)
    m = player()
    points.adjust(member_id=m.id, points=100, reason="测试", idempotency_key="seed")
    db.session.commit()
    draw_id, _status = play_and_die(brand.id, c.id, m.id, commit=False)
    # nothing of it is in PostgreSQL: its transaction (the points it paid) was rolled back
    assert db.session.get(GameDraw, draw_id) is None
    assert _balance(m.id) == 100
    assert [d["id"] for _sid, d in live.stream_entries(brand.id, 10)] == [draw_id]
    # the periodic job waits a minute for the request's own commit
    assert jobs.record_plays() == 0

    # the job and replays of the same request race for it
    def step(i: int):
        if i % 2:
            return jobs.record_plays(grace_seconds=0)
        draw = services.play(campaign_id=c.id, member_id=m.id, request_key="k1", ip=None)
        return draw.id

    results = run_concurrently(app, brand.id, 8, step)
    assert all(r[0] == "ok" for r in results), results
    jobs.record_plays(grace_seconds=0)
    services.grant_draw(draw_id=draw_id)
    db.session.commit()
    db.session.expire_all()
    draw = db.session.get(GameDraw, draw_id)
    assert (draw.status, draw.prize_name, draw.paid_with, draw.points_spent) == (
        "granted", "50积分", "points", 10,
    )  # fmt: skip
    assert db.session.scalar(select(func.count()).select_from(GameDraw)) == 1
    # paid once (10) and granted once (50)
    assert _balance(m.id) == 100 - 10 + 50
    assert db.session.scalar(select(func.count()).where(PointsEntry.points == 50)) == 1
    row = db.session.scalars(select(GamePlayer)).one()
    assert (row.plays_total, row.plays_day, row.wins_total) == (1, 1, 1)
    assert live.stream_entries(brand.id, 10) == []
    # the member's next play counts on from there
    services.play(campaign_id=c.id, member_id=m.id, request_key="k2", ip=None)
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalars(select(GamePlayer)).one().plays_total == 2


def test_counters_redis_lost_are_read_back_from_postgresql(brand):
    stocked = {**POINTS_50, "stock": 3}
    c = make_campaign(prizes=[stocked, THANKS], plays_total=3)
    first, others = player(), [player() for _ in range(4)]
    for k in ("a", "b"):
        assert services.play(campaign_id=c.id, member_id=first.id, request_key=k, ip=None).won
        db.session.commit()
    # Redis loses the campaign's counters and the member's
    get_redis().delete(live.state_key(brand.id, c.id), live.player_key(brand.id, c.id, first.id))
    won = [
        services.play(campaign_id=c.id, member_id=m.id, request_key="x", ip=None).won
        for m in others
    ]
    db.session.commit()
    assert won == [True, False, False, False]  # 2 given before, 1 left of the 3
    assert services.play(campaign_id=c.id, member_id=first.id, request_key="c", ip=None)
    db.session.commit()
    with pytest.raises(LimitReached):
        services.play(campaign_id=c.id, member_id=first.id, request_key="d", ip=None)
    db.session.rollback()
    prize = db.session.scalars(select(GamePrize).where(GamePrize.stock.is_not(None))).one()
    assert prize.awarded == 3


def test_a_play_written_twice_counts_once(brand):
    c = make_campaign(prizes=[{**POINTS_50, "stock": 5, "daily_cap": 5}, THANKS], budget_fen=500)
    m = player()
    services.play(campaign_id=c.id, member_id=m.id, request_key="k", ip=None)
    db.session.rollback()  # the request failed after the decision
    (entry,) = [d for _sid, d in live.stream_entries(brand.id, 10)]
    assert len(ledger.record([entry], paid=True)) == 1
    assert ledger.record([entry], paid=True) == []
    assert ledger.record([entry, entry], paid=True) == []
    db.session.commit()
    db.session.expire_all()
    prize = db.session.scalars(select(GamePrize).where(GamePrize.stock.is_not(None))).one()
    assert prize.awarded == 1
    row = db.session.scalars(select(GamePlayer)).one()
    assert (row.plays_total, row.plays_day, row.wins_total, row.wins_day) == (1, 1, 1, 1)
    assert db.session.get(type(c), c.id).spent_fen == 50


def test_a_play_leaves_the_stream_only_when_its_transaction_commits(brand):
    """A savepoint released in the play's transaction (the prize's grant keeps its own work
    in one) is not the commit: the play stays in the stream until its draw is committed,
    so a transaction that fails after it leaves the play to ``record_plays``."""
    r = get_redis()
    stream = live.stream_key(brand.id)

    def play_then_savepoint() -> str:
        entry = r.xadd(stream, {"r": "{}"}).decode()
        live.drop_after_commit(brand.id, entry)
        with db.session.begin_nested():
            db.session.execute(select(1))
        return entry

    kept = play_then_savepoint()
    assert r.xlen(stream) == 1
    db.session.rollback()
    assert r.xlen(stream) == 1  # not written: still there for the job
    play_then_savepoint()
    assert r.xlen(stream) == 2
    db.session.commit()
    assert [e[0].decode() for e in r.xrange(stream)] == [kept]
