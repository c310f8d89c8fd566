"""The mini-program play endpoint: a draw over HTTP decided at once and granted by the job that
writes plays (within seconds), idempotent, refusals as JSON errors."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from coupons.models import Coupon
from games import jobs
from games.models import GameDraw
from members.models import Member
from tests import factories
from tests.games.conftest import make_campaign
from tests.support.mini_program import activate, api, bearer


def _campaign(brand, **kw):
    with use_brand(brand.id):
        tpl = factories.coupon_template(name="满50减5")
        prizes = [
            {"name": "满50减5", "kind": "coupon", "coupon_template_id": tpl.id,
             "value_fen": 500, "weight": 1, "stock": 1, "fallback": 2},
            {"name": "谢谢参与", "kind": "none", "weight": 0},
        ]  # fmt: skip
        return make_campaign(prizes=prizes, **kw).id


def test_play_over_http_grants_the_coupon_and_a_replay_answers_the_same(
    wx_client, wx_brand, wx_consumer
):
    campaign_id = _campaign(wx_brand)
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    url = api(wx_brand, f"games/{campaign_id}/draws")
    r = wx_client.post(url, json={"request_key": "tap-1"}, headers=bearer(token))
    assert r.status_code == 200, r.json
    body = r.json
    assert (body["won"], body["prize_name"], body["kind"], body["status"]) == (
        True, "满50减5", "coupon", "pending_grant",
    )  # fmt: skip
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Request-ID"] and r.headers["X-Content-Type-Options"] == "nosniff"
    again = wx_client.post(url, json={"request_key": "tap-1"}, headers=bearer(token)).json
    assert again["draw_id"] == body["draw_id"]
    # the only unit is gone: the next play falls back to thanks
    second = wx_client.post(url, json={"request_key": "tap-2"}, headers=bearer(token)).json
    assert (second["won"], second["status"]) == (False, "lost")
    with use_brand(wx_brand.id):
        # the job writes the plays left in the stream and grants their prizes
        assert jobs.record_plays() == 1  # the replay wrote the first
        assert jobs.record_plays() == 0
        assert db.session.get(GameDraw, body["draw_id"]).status == "granted"
        member_id = db.session.scalar(select(Member.id).where(Member.phone == "13912345678"))
        coupons = db.session.scalars(select(Coupon).where(Coupon.member_id == member_id)).all()
        assert len(coupons) == 1 and coupons[0].source == "game"
        assert db.session.scalar(select(func.count()).select_from(GameDraw)) == 2


def test_refusals_are_json_errors(wx_client, wx_brand, wx_consumer):
    ended = _campaign(wx_brand)
    with use_brand(wx_brand.id):
        from games import services

        services.end_campaign(campaign_id=ended)
        db.session.commit()
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    r = wx_client.post(
        api(wx_brand, f"games/{ended}/draws"), json={"request_key": "k"}, headers=bearer(token)
    )
    assert r.status_code == 409 and r.json["error"]["code"] == "ended"
    assert r.json["error"]["message"] == "该游戏已结束。"
    r = wx_client.post(
        api(wx_brand, "games/999999/draws"), json={"request_key": "k"}, headers=bearer(token)
    )
    assert r.status_code == 404
    r = wx_client.post(
        api(wx_brand, f"games/{ended}/draws"), json={"request_key": ""}, headers=bearer(token)
    )
    assert r.status_code == 400
    r = wx_client.post(api(wx_brand, f"games/{ended}/draws"), json={"request_key": "k"})
    assert r.status_code == 401
