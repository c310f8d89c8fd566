"""The mini-program's play served ahead of Flask's pipeline (``games.front``): what it answers
itself, what it leaves to Flask's route, a play paid in points, an operator's change seen at
the next play, rate limits, and a lost Redis."""

from __future__ import annotations

import redis
from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from games import jobs, live, services
from games.models import GameDraw, GameFlag
from members.models import Member
from points import queries as points_queries
from points import services as points
from tests.games.conftest import make_campaign
from tests.support.mini_program import activate, api, bearer, login

WIN = [
    {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 1},
    {"name": "谢谢参与", "kind": "none", "weight": 0},
]


def _draws(brand) -> int:
    with use_brand(brand.id):
        return db.session.scalar(select(func.count()).select_from(GameDraw))


def _stream(brand) -> int:
    return len(live.stream_entries(brand.id, 100))


def test_the_answer_is_the_draw_the_job_writes(wx_client, wx_brand, wx_consumer):
    with use_brand(wx_brand.id):
        campaign_id = make_campaign(prizes=WIN).id
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    r = wx_client.post(
        api(wx_brand, f"games/{campaign_id}/draws"), json={"request_key": "a"},
        headers=bearer(token),
    )  # fmt: skip
    assert r.status_code == 200, r.json
    assert (r.json["won"], r.json["status"], r.json["paid_with"]) == (True, "pending_grant", "free")
    assert _draws(wx_brand) == 0 and _stream(wx_brand) == 1  # decided, not yet written
    with use_brand(wx_brand.id):
        assert jobs.record_plays() == 1
        draw = db.session.get(GameDraw, r.json["draw_id"])
        assert (draw.prize_id, draw.slot_prize_id, draw.prize_name, draw.status) == (
            r.json["prize_id"], r.json["slot_prize_id"], "50积分", "granted",
        )  # fmt: skip
        assert draw.created_at.isoformat().startswith(r.json["created_at"][:19])
        assert points_queries.balance(draw.member_id).balance == 50
    assert _stream(wx_brand) == 0


def test_what_the_front_does_not_answer_flask_s_route_refuses(wx_client, wx_brand, wx_consumer):
    with use_brand(wx_brand.id):
        campaign_id = make_campaign(prizes=WIN).id
        checkin_id = make_campaign(
            kind="checkin", prizes=[{"name": "5积分", "kind": "points", "points": 5,
                                    "value_fen": 5, "streak_day": 1}],
        ).id  # fmt: skip
    url = api(wx_brand, f"games/{campaign_id}/draws")
    guest = login(wx_client, wx_brand, wx_consumer)["token"]  # signed in, not activated
    r = wx_client.post(url, json={"request_key": "k"}, headers=bearer(guest))
    assert (r.status_code, r.json["error"]["code"]) == (403, "not_activated")
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    refused = {
        "an unknown field": (url, {"request_key": "k", "won": True}, bearer(token)),
        "a NUL byte": (url, {"request_key": "k\u0000"}, bearer(token)),
        "no key": (url, {}, bearer(token)),
        "no session": (url, {"request_key": "k"}, {}),
        "an expired session": (url, {"request_key": "k"}, bearer("mp_" + "x" * 40)),
        "an unknown game": (
            api(wx_brand, "games/999999/draws"),
            {"request_key": "k"},
            bearer(token),
        ),
        "a check-in": (
            api(wx_brand, f"games/{checkin_id}/draws"),
            {"request_key": "k"},
            bearer(token),
        ),
        "an unknown brand": (
            f"/api/mp/nosuchbrand/games/{campaign_id}/draws",
            {"request_key": "k"},
            bearer(token),
        ),
    }
    for what, (path, body, headers) in refused.items():
        r = wx_client.post(path, json=body, headers=headers)
        assert 400 <= r.status_code < 500, (what, r.status_code)
        assert "error" in r.json, what
    r = wx_client.post(url, data="request_key=k", headers=bearer(token))  # not JSON
    assert 400 <= r.status_code < 500
    assert _draws(wx_brand) == 0 and _stream(wx_brand) == 0


def test_a_play_paid_in_points_is_written_and_granted_in_the_request(
    wx_client, wx_brand, wx_consumer
):
    with use_brand(wx_brand.id):
        campaign_id = make_campaign(prizes=WIN, cost_points=10).id
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    url = api(wx_brand, f"games/{campaign_id}/draws")
    r = wx_client.post(url, json={"request_key": "p1"}, headers=bearer(token))
    assert (r.status_code, r.json["error"]["code"]) == (409, "no_points")
    with use_brand(wx_brand.id):
        member_id = db.session.scalar(select(Member.id).where(Member.phone == "13912345678"))
        points.adjust(member_id=member_id, points=15, reason="测试", idempotency_key="seed")
        db.session.commit()
    r = wx_client.post(url, json={"request_key": "p2"}, headers=bearer(token))
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["paid_with"], r.json["points_spent"]) == (
        "granted", "points", 10,
    )  # fmt: skip
    assert _draws(wx_brand) == 1 and _stream(wx_brand) == 0
    with use_brand(wx_brand.id):
        assert points_queries.balance(member_id).balance == 15 - 10 + 50
    again = wx_client.post(url, json={"request_key": "p2"}, headers=bearer(token)).json
    assert again["draw_id"] == r.json["draw_id"]
    with use_brand(wx_brand.id):
        db.session.expire_all()
        assert points_queries.balance(member_id).balance == 55


def test_an_operator_s_pause_is_seen_at_the_next_play(wx_client, wx_brand, wx_consumer):
    with use_brand(wx_brand.id):
        campaign_id = make_campaign(prizes=WIN).id
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    url = api(wx_brand, f"games/{campaign_id}/draws")
    assert wx_client.post(url, json={"request_key": "1"}, headers=bearer(token)).status_code == 200
    with use_brand(wx_brand.id):
        services.pause_campaign(campaign_id=campaign_id)
        db.session.commit()
    r = wx_client.post(url, json={"request_key": "2"}, headers=bearer(token))
    assert (r.status_code, r.json["error"]["code"]) == (409, "paused")
    assert r.json["error"]["message"] == "该游戏已暂停，请稍后再来。"


def test_too_fast_plays_are_refused_and_a_burst_is_flagged(
    wx_app, wx_client, wx_brand, wx_consumer
):
    with use_brand(wx_brand.id):
        campaign_id = make_campaign(prizes=WIN).id
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    url = api(wx_brand, f"games/{campaign_id}/draws")
    wx_app.config["GAMES_FLAG_PER_MINUTE"] = 4
    try:
        codes = [
            wx_client.post(url, json={"request_key": f"k{i}"}, headers=bearer(token)).status_code
            for i in range(11)
        ]
    finally:
        wx_app.config.pop("GAMES_FLAG_PER_MINUTE")
    assert codes == [200] * 10 + [429]
    assert _stream(wx_brand) == 10
    with use_brand(wx_brand.id):
        flags = db.session.scalars(select(GameFlag)).all()
        assert [(f.ip, f.plays) for f in flags] == [("127.0.0.1", 8)]


def test_a_lost_redis_answers_503_and_changes_nothing(wx_app, wx_client, wx_brand, wx_consumer):
    with use_brand(wx_brand.id):
        campaign_id = make_campaign(prizes=WIN).id
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    url = api(wx_brand, f"games/{campaign_id}/draws")
    assert wx_client.post(url, json={"request_key": "1"}, headers=bearer(token)).status_code == 200
    kept = wx_app.extensions["wmb_redis"]
    wx_app.extensions["wmb_redis"] = redis.Redis(port=1, socket_connect_timeout=0.2)
    try:
        r = wx_client.post(url, json={"request_key": "2"}, headers=bearer(token))
    finally:
        wx_app.extensions["wmb_redis"] = kept
    assert r.status_code == 503 and r.headers.get("Retry-After")
    assert _stream(wx_brand) == 1 and _draws(wx_brand) == 0


def test_a_known_session_plays_in_one_round_trip_and_its_end_is_seen_at_once(
    wx_app, wx_client, wx_brand, wx_consumer, monkeypatch
):
    from members import api as mp
    from wechat import brand_cache

    with use_brand(wx_brand.id):
        campaign_id = make_campaign(prizes=WIN).id
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    url = api(wx_brand, f"games/{campaign_id}/draws")
    reads = []
    real = brand_cache.current_with
    monkeypatch.setattr(brand_cache, "current_with", lambda *a: reads.append(a) or real(*a))
    codes = [
        wx_client.post(url, json={"request_key": f"k{i}"}, headers=bearer(token)).status_code
        for i in range(3)
    ]
    # the first play reads the brand's marker and the session; the next ones let the play's
    # script check both
    assert codes == [200, 200, 200] and len(reads) == 1
    assert _stream(wx_brand) == 3

    from core.redis import get_redis

    get_redis().delete(mp.session_key(wx_brand.id, token))  # the session expires
    r = wx_client.post(url, json={"request_key": "k3"}, headers=bearer(token))
    assert (r.status_code, r.json["error"]["code"]) == (401, "invalid_session")
    assert _stream(wx_brand) == 3 and len(reads) == 2  # nothing counted, read again

    # an operator's change moves the brand's marker: the kept brand is read again
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    assert wx_client.post(url, json={"request_key": "k4"}, headers=bearer(token)).status_code == 200
    with use_brand(wx_brand.id):
        services.pause_campaign(campaign_id=campaign_id)
        db.session.commit()
    r = wx_client.post(url, json={"request_key": "k5"}, headers=bearer(token))
    assert (r.status_code, r.json["error"]["code"]) == (409, "paused")
    assert _stream(wx_brand) == 4
