"""Provably fair: the draws follow the weights, and every draw recomputes from the seed."""

from __future__ import annotations

import math
import secrets

from sqlalchemy import select, text

from core.db import db
from games import draws, fairness, services
from games.models import GameDraw
from tests.games.conftest import make_campaign, player

WEIGHTS = [5, 15, 30, 50, 100, 800]


def chi_square_p(observed: list[int], expected: list[float]) -> float:
    """The p-value of Pearson's chi-square statistic (k - 1 degrees of freedom)."""
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    return _upper_gamma(len(observed) / 2 - 0.5, stat / 2)


def _upper_gamma(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x)."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:  # series for P(a, x)
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= x / n
            total += term
        return 1.0 - total * math.exp(log_front)
    # continued fraction for Q(a, x) (Lentz)
    b = x + 1 - a
    c = 1e300
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return h * math.exp(log_front)


def test_the_chi_square_helper_knows_its_table():
    # chi-square with 5 degrees of freedom: P(X > 11.07) = 0.05, P(X > 20.515) = 0.001
    assert abs(_upper_gamma(2.5, 11.0705 / 2) - 0.05) < 1e-4
    assert abs(_upper_gamma(2.5, 20.515 / 2) - 0.001) < 1e-5


def test_100000_draws_follow_the_weights():
    slots = [draws.Slot(i + 1, w) for i, w in enumerate(WEIGHTS)]
    seed = draws.new_seed()
    counts = [0] * len(WEIGHTS)
    for draw_id in range(1, 100_001):
        counts[draws.pick(draws.draw_random(seed, 42, draw_id), slots) - 1] += 1
    total = sum(WEIGHTS)
    expected = [100_000 * w / total for w in WEIGHTS]
    assert chi_square_p(counts, expected) > 0.001


def test_a_weight_of_zero_is_never_drawn_and_the_mapping_is_exact_at_the_edges():
    slots = [draws.Slot(1, 0), draws.Slot(2, 1), draws.Slot(3, 3)]
    assert draws.pick("0" * 64, slots) == 2  # r = 0 -> x = 0
    assert draws.pick("3fffffffffffffff" + "0" * 48, slots) == 2  # x = 0.999... -> first unit
    assert draws.pick("4000000000000000" + "0" * 48, slots) == 3  # x = 1
    assert draws.pick("f" * 64, slots) == 3
    for _ in range(1000):
        assert draws.pick(secrets.token_hex(32), slots) != 1


def test_played_draws_follow_the_weights_end_to_end(app, brand):
    app.config["GAMES_MEMBER_RATE"] = 10_000
    prizes = [
        {"name": "A", "kind": "points", "points": 1, "value_fen": 1, "weight": 10},
        {"name": "B", "kind": "points", "points": 2, "value_fen": 2, "weight": 30},
        {"name": "谢谢参与", "kind": "none", "weight": 60},
    ]
    try:
        c = make_campaign(prizes=prizes)
        m = player()
        names = []
        for i in range(600):
            names.append(
                services.play(
                    campaign_id=c.id, member_id=m.id, request_key=f"k{i}", ip=None
                ).slot_prize_id
            )
        db.session.commit()
    finally:
        app.config["GAMES_MEMBER_RATE"] = 10
    ids = sorted(set(names))
    observed = [names.count(i) for i in ids]
    assert chi_square_p(observed, [60.0, 180.0, 360.0]) > 0.001
    assert fairness.verify(c.id).ok


def test_verify_recomputes_every_draw_from_the_revealed_seed(app, brand, runner):
    prizes = [
        {"name": "A", "kind": "points", "points": 1, "value_fen": 1, "weight": 50, "stock": 3,
         "fallback": 2},
        {"name": "B", "kind": "points", "points": 1, "value_fen": 1, "weight": 10},
        {"name": "谢谢参与", "kind": "none", "weight": 40},
    ]  # fmt: skip
    c = make_campaign(prizes=prizes)
    members = [player() for _ in range(4)]
    for i in range(20):
        services.play(campaign_id=c.id, member_id=members[i % 4].id, request_key=f"k{i}", ip=None)
        db.session.commit()
    services.play(campaign_id=c.id, member_id=members[0].id, request_key="p", ip=None, preview=True)
    services.end_campaign(campaign_id=c.id)
    db.session.commit()
    report = fairness.verify(c.id, seed=c.seed)
    assert report.ok, report.mismatches
    assert report.checked == 20
    assert any(d.fallbacks for d in db.session.scalars(select(GameDraw)))  # stock ran out
    result = runner.invoke(args=["games", "verify", str(c.id)])
    assert result.exit_code == 0, result.output
    assert "20 draws checked, 0 mismatches" in result.output and c.seed in result.output
    # a wrong seed, and a recorded result changed afterwards, are both found
    assert not fairness.verify(c.id, seed=draws.new_seed()).ok
    lost = db.session.scalars(select(GameDraw).where(GameDraw.prize_id.is_(None))).first()
    winner = db.session.scalars(select(GameDraw).where(GameDraw.prize_id.is_not(None))).first()
    db.session.execute(
        text("UPDATE game_draw SET prize_id = :p, slot_prize_id = :p, fallbacks = '[]'"
             " WHERE id = :id"),
        {"p": winner.prize_id, "id": lost.id},
    )  # fmt: skip
    db.session.commit()
    result = runner.invoke(args=["games", "verify", str(c.id)])
    assert result.exit_code == 1 and f"draw {lost.id}" in result.output
