"""A member merge: the merged member's plays, wins, check-ins and extra plays become the
kept member's, and the limits then hold over both."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import db
from games import errors, services
from games.models import GameCheckIn, GameDraw, GamePlayer
from members import merge
from tests.games.conftest import make_campaign, player

THANKS = [
    {"name": "10积分", "kind": "points", "points": 10, "value_fen": 10, "weight": 0},
    {"name": "谢谢参与", "kind": "none", "weight": 1},
]
CHECKIN = [
    {"name": "签到1积分", "kind": "points", "points": 1, "value_fen": 1, "streak_day": 1},
    {"name": "连签3天10积分", "kind": "points", "points": 10, "value_fen": 10, "streak_day": 3},
]


def _play(campaign, member, key):
    draw = services.play(
        campaign_id=campaign.id, member_id=member.id, request_key=key, ip="10.0.0.1", grant=True
    )
    db.session.commit()
    return draw


def _count(model, **where):
    q = select(func.count()).select_from(model)
    for k, v in where.items():
        q = q.where(getattr(model, k) == v)
    return db.session.scalar(q)


def test_merged_plays_count_against_the_kept_members_limits(brand):
    c = make_campaign(prizes=THANKS, plays_per_day=3, plays_total=5)
    kept, other = player(), player()
    _play(c, kept, "k1")
    _play(c, other, "o1")
    _play(c, other, "o2")
    record = merge.merge_members(kept_id=kept.id, merged_id=other.id, reason="同一手机号")
    db.session.commit()
    assert record.counts["game_draws"] == 2 and record.counts["game_players"] == 1
    assert _count(GameDraw, member_id=kept.id) == 3
    assert _count(GameDraw, member_id=other.id) == 0
    row = db.session.execute(select(GamePlayer).where(GamePlayer.member_id == kept.id)).scalar_one()
    assert (row.plays_day, row.plays_total) == (3, 3)
    assert _count(GamePlayer, member_id=other.id) == 0
    # three plays today already (one of theirs, two of the merged record's): no fourth
    with pytest.raises(errors.LimitReached):
        _play(c, kept, "k2")
    db.session.rollback()


def test_a_campaign_only_the_merged_member_played_moves_whole(brand):
    c = make_campaign(prizes=THANKS, plays_per_day=2)
    kept, other = player(), player()
    _play(c, other, "o1")
    _play(c, other, "o2")
    merge.merge_members(kept_id=kept.id, merged_id=other.id, reason="同一手机号")
    db.session.commit()
    row = db.session.execute(select(GamePlayer).where(GamePlayer.member_id == kept.id)).scalar_one()
    assert (row.plays_day, row.plays_total) == (2, 2)
    with pytest.raises(errors.LimitReached):
        _play(c, kept, "k1")
    db.session.rollback()


def test_a_check_in_day_both_made_counts_once(brand):
    c = make_campaign(kind="checkin", prizes=CHECKIN, checkin_cycle=3)
    kept, other = player(), player()
    services.check_in(campaign_id=c.id, member_id=kept.id, request_key="a")
    services.check_in(campaign_id=c.id, member_id=other.id, request_key="b")
    db.session.commit()
    merge.merge_members(kept_id=kept.id, merged_id=other.id, reason="同一手机号")
    db.session.commit()
    assert _count(GameCheckIn, member_id=kept.id) == 1
    assert _count(GameCheckIn, member_id=other.id) == 0
    with pytest.raises(errors.AlreadyCheckedIn):
        services.check_in(campaign_id=c.id, member_id=kept.id, request_key="c")
    db.session.rollback()
