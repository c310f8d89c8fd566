"""2,000 members drawing 10 times each at once against prizes of 100 units: no prize beyond
its stock or daily cap, every per-member limit exact, points deducted = plays x cost."""

from __future__ import annotations

import collections
import queue
import threading

import pytest
from sqlalchemy import func, select

from core.db import db, utcnow
from core.tenancy import use_brand
from games import fairness, jobs, services
from games.models import GameDraw, GamePlayer, GamePrize, GamePrizeDay
from members.models import Member
from points import services as points
from points.models import PointsEntry
from tests.games.conftest import make_campaign

MEMBERS = 2000
TRIES = 10
THREADS = 12
COST = 10
RICH, POOR = 100, 30  # points: 1 free + 7 paid plays (then the daily limit); 1 free + 3 paid


def _members(n: int) -> list[int]:
    now = utcnow()
    rows = [
        Member(
            phone=f"137{i:08d}",
            card_no=f"G{i:09d}",
            source="console",
            status="active",
            activated_at=now,
        )
        for i in range(n)
    ]
    db.session.add_all(rows)
    db.session.commit()
    return [m.id for m in rows]


@pytest.mark.timeout(2400)  # 20,000 plays on a shared 2-core machine
def test_2000_members_times_10_draws_at_once(app, brand):
    app.config["GAMES_MEMBER_RATE"] = 10_000
    prizes = [
        {"name": "5积分", "kind": "points", "points": 5, "value_fen": 5, "weight": 20,
         "stock": 100},
        {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 10,
         "stock": 100, "daily_cap": 60, "fallback": 1},
        {"name": "保温杯", "kind": "gift", "value_fen": 5000, "weight": 5, "stock": 100},
        {"name": "谢谢参与", "kind": "none", "weight": 65},
    ]  # fmt: skip
    c = make_campaign(
        prizes=prizes, cost_points=COST, free_per_day=1, plays_per_day=8, wins_per_day=2,
        wins_total=2,
    )  # fmt: skip
    ids = _members(MEMBERS)
    start_points = {}
    for n, member_id in enumerate(ids):
        start_points[member_id] = RICH if n % 2 == 0 else POOR
        points.adjust(
            member_id=member_id, points=start_points[member_id], reason="测试",
            idempotency_key=f"seed-{member_id}",
        )  # fmt: skip
    campaign_id, brand_id = c.id, brand.id
    db.session.commit()
    db.session.close()  # no transaction of this thread (the relay's) stays idle meanwhile

    # Each member's 10 tries are queued next to each other, so they race for the same row.
    tasks: queue.Queue = queue.Queue()
    for member_id in ids:
        for t in range(TRIES):
            tasks.put((member_id, t))
    outcomes: collections.Counter = collections.Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        with app.app_context(), use_brand(brand_id):
            barrier.wait()
            while True:
                try:
                    member_id, t = tasks.get_nowait()
                except queue.Empty:
                    break
                try:
                    services.play(
                        campaign_id=campaign_id, member_id=member_id, request_key=f"t{t}", ip=None
                    )
                    db.session.commit()
                    result = "ok"
                except Exception as exc:  # noqa: BLE001 - counted below
                    db.session.rollback()
                    result = getattr(exc, "code", type(exc).__name__)
                with lock:
                    outcomes[result] += 1
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(1200)
    app.config["GAMES_MEMBER_RATE"] = 10

    rich = (MEMBERS + 1) // 2
    poor = MEMBERS - rich
    plays = rich * 8 + poor * 4
    assert outcomes == {
        "ok": plays,
        "limit_reached": rich * 2,
        "no_points": poor * 6,
    }, outcomes
    db.session.expire_all()
    # every prize within its stock and daily cap; the counters equal the winning draws
    won = dict(
        db.session.execute(
            select(GameDraw.prize_id, func.count())
            .where(GameDraw.prize_id.is_not(None))
            .group_by(GameDraw.prize_id)
        ).all()
    )
    pool = db.session.scalars(select(GamePrize).order_by(GamePrize.position)).all()
    for prize in pool[:3]:
        assert prize.awarded == won.get(prize.id, 0)
        assert prize.awarded <= prize.stock
    days = db.session.scalars(select(GamePrizeDay).where(GamePrizeDay.prize_id == pool[1].id))
    assert all(d.awarded <= 60 for d in days)
    # 12,000 plays want far more than 300 prizes: every one is given, none more
    assert [p.awarded for p in pool[:3]] == [100, 60, 100]
    # per member: plays exact, wins within the limit
    per_member = dict(
        db.session.execute(
            select(GameDraw.member_id, func.count()).group_by(GameDraw.member_id)
        ).all()
    )
    for n, member_id in enumerate(ids):
        assert per_member[member_id] == (8 if n % 2 == 0 else 4)
    assert db.session.scalar(select(func.max(GamePlayer.wins_total))) <= 2
    wins = db.session.execute(
        select(GameDraw.member_id, func.count())
        .where(GameDraw.prize_id.is_not(None))
        .group_by(GameDraw.member_id)
    ).all()
    assert max(n for _, n in wins) <= 2
    # points: deducted = paid plays x cost, in the draws and in the points ledger
    paid = db.session.scalar(
        select(func.count()).select_from(GameDraw).where(GameDraw.paid_with == "points")
    )
    assert paid == rich * 7 + poor * 3
    assert db.session.scalar(select(func.sum(GameDraw.points_spent))) == paid * COST
    spent = db.session.scalar(
        select(func.sum(PointsEntry.points)).where(PointsEntry.kind == "spend")
    )
    assert abs(spent) == paid * COST
    # the grants: the recovery grants every pending prize once; balances add up
    assert jobs.recover_grants(older_than_seconds=0) == won[pool[0].id] + won[pool[1].id]
    assert jobs.recover_grants(older_than_seconds=0) == 0
    prize_points = dict(
        db.session.execute(
            select(GameDraw.member_id, func.sum(GamePrize.points))
            .join(GamePrize, GamePrize.id == GameDraw.prize_id)
            .group_by(GameDraw.member_id)
        ).all()
    )
    own = dict(
        db.session.execute(
            select(GameDraw.member_id, func.sum(GameDraw.points_spent)).group_by(GameDraw.member_id)
        ).all()
    )
    for member_id in ids[:200]:
        expected = start_points[member_id] - own[member_id] + prize_points.get(member_id, 0)
        assert points.balance(member_id=member_id).balance == expected
    assert fairness.verify(campaign_id).ok
