"""Console pages: list, create with the prize table, start, preview, live figures, refusals
in Chinese, another brand's campaign answers 404."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from core.db import db, utcnow
from games import jobs, services
from games.models import GameCampaign, GameDraw, GamePrize
from points import services as points
from tests import factories
from tests.games.conftest import make_campaign, player


def _local(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M")


def _form(html: str, **overrides) -> dict:
    now = utcnow()
    data = {
        "csrf_token": factories.csrf(html),
        "kind": "wheel",
        "name": "双十一大转盘",
        "starts_at": _local(now - dt.timedelta(hours=1)),
        "ends_at": _local(now + dt.timedelta(days=7)),
        "cost_points": "10",
        "free_per_day": "1",
        "extra_per_purchase": "0",
        "extra_per_checkin": "0",
        "checkin_cycle": "7",
        "claim_days": "30",
        "contact": "400-000-0000",
        "budget": "",
        "prizes-0-name": "20积分",
        "prizes-0-kind": "points",
        "prizes-0-value": "0.20",
        "prizes-0-points": "20",
        "prizes-0-weight": "30",
        "prizes-0-stock": "100",
        "prizes-0-fallback": "2",
        "prizes-1-name": "谢谢参与",
        "prizes-1-kind": "none",
        "prizes-1-value": "0",
        "prizes-1-weight": "70",
    }
    data.update(overrides)
    return data


def test_create_start_preview_and_figures(client, brand):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    html = client.get("/console/games").get_data(as_text=True)
    assert "游戏活动" in html and "大转盘" in html
    page = client.get("/console/games/new?kind=wheel").get_data(as_text=True)
    assert "奖品" in page and "权重" in page
    r = client.post("/console/games/new", data=_form(page))
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    c = db.session.scalars(select(GameCampaign)).one()
    prizes = db.session.scalars(select(GamePrize).order_by(GamePrize.position)).all()
    assert [(p.name, p.weight, p.value_fen) for p in prizes] == [
        ("20积分", 30, 20),
        ("谢谢参与", 70, 0),
    ]
    assert prizes[0].fallback_prize_id == prizes[1].id
    detail = client.get(f"/console/games/{c.id}").get_data(as_text=True)
    assert "草稿" in detail and c.seed_hash in detail and "30.00%" in detail
    token = factories.csrf(detail)
    assert (
        client.post(f"/console/games/{c.id}/start", data={"csrf_token": token}).status_code == 302
    )
    db.session.expire_all()
    assert db.session.get(GameCampaign, c.id).status == "live"
    m = player()
    r = client.post(
        f"/console/games/{c.id}/preview", data={"csrf_token": token, "member_id": str(m.id)}
    )
    assert r.status_code == 302
    preview = db.session.scalars(select(GameDraw)).one()
    assert preview.preview and preview.status == "preview"
    points.adjust(member_id=m.id, points=100, reason="测试", idempotency_key="seed")
    for i in range(3):
        services.play(campaign_id=c.id, member_id=m.id, request_key=f"k{i}", ip=None)
        db.session.commit()
    jobs.stats_all()
    detail = client.get(f"/console/games/{c.id}").get_data(as_text=True)
    assert "进行中" in detail and "抽奖次数" in detail and "预览" in detail
    assert "data-chart" in detail or "echarts" in detail


def test_a_live_change_against_players_is_refused_on_the_form(client, brand):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    c = make_campaign()
    page = client.get(f"/console/games/{c.id}/edit").get_data(as_text=True)
    assert "谢谢参与" in page and "玩家有利" in page
    data = _form(page, **{"prizes-0-name": "10积分", "prizes-0-kind": "points",
                          "prizes-0-points": "10", "prizes-0-value": "0.10",
                          "prizes-0-weight": "60", "prizes-0-stock": "",
                          "prizes-0-fallback": "", "prizes-1-weight": "30"})  # fmt: skip
    data.pop("kind")
    data.update(cost_points="0", free_per_day="0")
    data["starts_at"] = _local(c.starts_at)
    data["ends_at"] = _local(c.ends_at)
    r = client.post(f"/console/games/{c.id}/edit", data=data)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "不能更改" in html, re.findall(r"role=\"alert\">([^<]*)<", html)
    assert db.session.scalars(select(GamePrize.weight).order_by(GamePrize.position)).all() == [
        30,
        70,
    ]


def test_a_prize_over_50000_yuan_is_refused_on_the_form(client, brand):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    page = client.get("/console/games/new?kind=wheel").get_data(as_text=True)
    r = client.post(
        "/console/games/new",
        data=_form(page, **{"prizes-0-kind": "gift", "prizes-0-value": "50000.01"}),
    )
    assert r.status_code == 400
    assert "50,000" in r.get_data(as_text=True)
    assert db.session.scalars(select(GameCampaign)).first() is None


def test_another_brands_campaign_is_not_found(client, brand):
    c = make_campaign()
    other = factories.brand()
    admin = factories.staff(other, "brand_admin")
    factories.login(client, other, admin)
    assert client.get(f"/console/games/{c.id}").status_code == 404
    assert client.get(f"/console/games/{c.id}/edit").status_code == 404
