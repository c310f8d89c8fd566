"""Fixed-window rate limits in Redis: several limits of one attempt counted in one round trip,
stopping at the first that refuses, as counting them one after the other would."""

from __future__ import annotations

from core import ratelimit
from core.redis import get_redis


def test_hit_each_stops_at_the_first_limit_that_refuses(app):
    with app.app_context():
        checks = [("per-minute", "13900000000", 1, 60), ("per-hour", "13900000000", 3, 3600)]
        assert ratelimit.hit_each(7, checks) == 0
        assert ratelimit.count(7, "per-minute", "13900000000") == 1
        assert ratelimit.count(7, "per-hour", "13900000000") == 1
        # The minute's limit refuses: the hour's counter is not spent by the refused attempt.
        assert ratelimit.hit_each(7, checks) == 1
        assert ratelimit.count(7, "per-hour", "13900000000") == 1
        ratelimit.clear(7, "per-minute", "13900000000")
        assert ratelimit.hit_each(7, checks) == 0
        ratelimit.clear(7, "per-minute", "13900000000")
        assert ratelimit.hit_each(7, checks) == 0
        ratelimit.clear(7, "per-minute", "13900000000")
        assert ratelimit.hit_each(7, checks) == 2  # the fourth in the hour
        ttl = get_redis().ttl("wmb:{b7}:rl:per-hour:13900000000")
        assert 3500 < ttl <= 3600


def test_hit_each_agrees_with_hit_one_at_a_time(app):
    with app.app_context():
        got = [ratelimit.hit_each(8, [("a", "x", 2, 60)]) for _ in range(4)]
        assert got == [0, 0, 1, 1]
        assert [ratelimit.hit(8, "b", "x", limit=2, window=60) for _ in range(4)] == [
            True,
            True,
            False,
            False,
        ]
