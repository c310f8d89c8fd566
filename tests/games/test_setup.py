"""Campaign settings and the law on prize promotions: the ¥50,000 ceiling, changes to a live
campaign only in the players' favour, every change in the audit log, the generated rules."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.audit import Actor, AuditLog, acting_as
from core.db import db
from games import draws, errors, rules, services
from games.models import GamePrize
from tests.games.conftest import make_campaign, settings

PRIZES = [
    {"name": "一等奖", "kind": "gift", "value_fen": 5_000_000, "weight": 1, "stock": 1},
    {"name": "10积分", "kind": "points", "points": 10, "value_fen": 10, "weight": 30, "stock": 100,
     "daily_cap": 20, "fallback": 3},
    {"name": "谢谢参与", "kind": "none", "weight": 69},
]  # fmt: skip


def _edit(campaign, **changes):
    values = {
        **settings(),
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "name": campaign.name,
    }
    prize_rows = [dict(p) for p in changes.pop("prizes", PRIZES)]
    values.update(changes)
    return services.update_campaign(campaign_id=campaign.id, values=values, prizes=prize_rows)


def test_a_prize_over_50000_yuan_is_refused(brand):
    too_much = [dict(PRIZES[0], value_fen=5_000_001), PRIZES[2]]
    with pytest.raises(errors.InvalidCampaign) as exc:
        services.create_campaign(kind="wheel", values=settings(), prizes=too_much)
    assert exc.value.field == "prizes-0-value_fen"
    assert "50,000" in exc.value.message
    c = make_campaign(prizes=PRIZES)  # exactly ¥50,000 is allowed
    with pytest.raises(errors.InvalidCampaign):
        _edit(c, prizes=too_much)


def test_the_seed_hash_is_published_and_the_seed_kept(brand):
    c = make_campaign(prizes=PRIZES)
    assert c.seed_hash == draws.seed_hash(c.seed) and len(c.seed_hash) == 64
    assert rules.rules_for(c).seed is None
    services.end_campaign(campaign_id=c.id)
    assert rules.rules_for(c).seed == c.seed


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "earlier"}, "ends_at"),
        ({"cost_points": 5}, "cost_points"),
        ({"plays_per_day": 1}, "plays_per_day"),
        ({"prizes": "odds"}, "prizes-1-weight"),
        ({"prizes": "less stock"}, "prizes-1-stock"),
        ({"prizes": "lower value"}, "prizes-0-weight"),
        ({"prizes": "removed"}, "prizes"),
    ],
)
def test_a_live_campaign_refuses_changes_against_players(brand, change, field):
    c = make_campaign(prizes=PRIZES, plays_per_day=5)
    before = [(p.weight, p.stock, p.value_fen) for p in db.session.scalars(select(GamePrize))]
    kw = dict(change)
    if kw.get("ends_at") == "earlier":
        kw["ends_at"] = c.ends_at - dt.timedelta(hours=1)
    prizes = [dict(p) for p in PRIZES]
    what = kw.pop("prizes", None)
    if what == "odds":
        prizes[1]["weight"] = 10
    elif what == "less stock":
        prizes[1]["stock"] = 50
    elif what == "lower value":
        prizes[0]["value_fen"] = 100
    elif what == "removed":
        prizes = [dict(prizes[1], fallback=None), prizes[2]]
    kw.setdefault("plays_per_day", 5)
    with pytest.raises(errors.AgainstPlayers) as exc:
        _edit(c, prizes=prizes, **kw)
    db.session.rollback()
    assert exc.value.field == field
    after = [(p.weight, p.stock, p.value_fen) for p in db.session.scalars(select(GamePrize))]
    assert after == before


def test_a_live_campaign_accepts_changes_in_players_favour_and_the_audit_log_keeps_them(brand):
    c = make_campaign(prizes=PRIZES, plays_per_day=5, cost_points=10)
    prizes = [dict(p) for p in PRIZES]
    prizes[1]["stock"] = 200
    prizes[1]["daily_cap"] = None
    later = c.ends_at + dt.timedelta(days=3)
    with acting_as(Actor("staff", None, "运营")):
        _edit(c, prizes=prizes, ends_at=later, plays_per_day=10, cost_points=5)
    db.session.commit()
    assert (c.ends_at, c.plays_per_day, c.cost_points) == (later, 10, 5)
    prize = db.session.scalars(select(GamePrize).where(GamePrize.position == 2)).one()
    assert (prize.stock, prize.daily_cap) == (200, None)
    logged = db.session.scalars(
        select(AuditLog).where(AuditLog.object_type.in_(("game_campaign", "game_prize")))
    ).all()
    assert any((entry.after or {}).get("stock") == 200 for entry in logged)
    assert all(
        "seed" not in (entry.after or {}) or entry.after["seed"] != c.seed for entry in logged
    )


def test_a_draft_can_change_anything(brand):
    c = make_campaign(prizes=PRIZES, start=False)
    prizes = [dict(p) for p in PRIZES]
    prizes[1]["weight"] = 5
    _edit(c, prizes=prizes[:2] + [prizes[2]], cost_points=50)
    db.session.commit()
    assert db.session.scalars(select(GamePrize.weight).order_by(GamePrize.position)).all() == [
        1,
        5,
        69,
    ]


def test_bad_settings_name_their_field(brand):
    with pytest.raises(errors.InvalidCampaign) as exc:
        services.create_campaign(
            kind="wheel", values=settings(ends_at=settings()["starts_at"]), prizes=PRIZES
        )
    assert exc.value.field == "ends_at"
    with pytest.raises(errors.InvalidCampaign) as exc:
        services.create_campaign(
            kind="wheel", values=settings(), prizes=[dict(PRIZES[1], fallback=2)]
        )
    assert exc.value.field == "prizes"
    with pytest.raises(errors.InvalidCampaign) as exc:
        services.create_campaign(kind="dice", values=settings(), prizes=PRIZES)
    assert exc.value.field == "kind"
    bad = [dict(PRIZES[1], fallback=1), PRIZES[2]]
    with pytest.raises(errors.InvalidCampaign) as exc:
        services.create_campaign(kind="wheel", values=settings(), prizes=bad)
    assert exc.value.field == "prizes-0-fallback"


def test_rules_are_generated_from_the_settings(brand):
    c = make_campaign(prizes=PRIZES, cost_points=10, free_per_day=1, plays_per_day=5)
    r = rules.rules_for(c)
    assert r.organiser == brand.name and r.contact == "400-000-0000"
    assert [p.odds_percent for p in r.prizes] == ["1.00", "30.00", "69.00"]
    assert [p.quantity for p in r.prizes] == [1, 100, None]
    assert r.prizes[0].value_fen == 5_000_000
    assert any("10" in line for line in r.how) and any("5" in line for line in r.limits)
    assert r.seed_hash == c.seed_hash
