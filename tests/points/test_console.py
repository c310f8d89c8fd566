"""Console pages: rules, campaigns, a member's points with adjustment, the report."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.audit import AuditLog
from core.db import db
from core.tenancy import use_brand
from points import rules, services
from points.models import PointsCampaign, PointsEntry
from tests import factories
from tests.support.points import T0


def _admin(client, brand):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    return admin


def test_adjustment_form_writes_entry_and_audit(client, brand, member):
    _admin(client, brand)
    page = client.get(f"/console/points/members/{member}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "手动调整" in html  # the page is in Chinese
    token = factories.csrf_token(client, f"/console/points/members/{member}")
    key = re.search(r'name="key"[^>]*value="([^"]+)"', html).group(1)
    data = {"csrf_token": token, "points": "120", "reason": "补录门店积分", "key": key}
    resp = client.post(f"/console/points/members/{member}/adjust", data=data)
    assert resp.status_code == 302
    # The same form posted twice (a double click) has one effect.
    client.post(f"/console/points/members/{member}/adjust", data=data)
    db.session.expire_all()
    assert services.balance(member).balance == 120
    audit = db.session.execute(
        select(AuditLog).where(AuditLog.action == "points_adjust")
    ).scalar_one()
    assert audit.after["points"] == 120 and audit.after["reason"] == "补录门店积分"
    assert audit.object_id == str(member)
    entry = db.session.execute(select(PointsEntry)).scalar_one()
    assert entry.operator and entry.reason == "补录门店积分"
    html = client.get(f"/console/points/members/{member}").get_data(as_text=True)
    assert "补录门店积分" in html and 'id="points-balance">120<' in html


def test_points_won_in_a_game_read_as_a_game_reward_with_the_campaign(client, brand, member):
    _admin(client, brand)
    with use_brand(brand.id):
        won = services.credit_game_wins(
            [services.Credit(member_id=member, points=10, key="game-draw:1", reason="幸运大转盘")]
        )
        db.session.commit()
    assert won["game-draw:1"].ok
    html = client.get(f"/console/points/members/{member}").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td>[^<]*</td>\s*<td>游戏奖励</td>.*?</tr>", html, re.S)
    assert row is not None and "+10" in row.group(0) and "幸运大转盘" in row.group(0)
    # The points' expiry reads as a sentence, not as "10 @ <date>".
    assert re.search(r"<li>10 积分将于 \d{4}-\d{2}-\d{2} 过期</li>", html), html
    assert " @ " not in html


def test_adjustment_without_reason_or_beyond_balance_writes_nothing(client, brand, member):
    _admin(client, brand)
    token = factories.csrf_token(client, f"/console/points/members/{member}")
    resp = client.post(
        f"/console/points/members/{member}/adjust",
        data={"csrf_token": token, "points": "10", "reason": "", "key": "k1"},
    )
    assert resp.status_code == 400
    resp = client.post(
        f"/console/points/members/{member}/adjust",
        data={"csrf_token": token, "points": "-10", "reason": "扣减", "key": "k2"},
    )
    assert resp.status_code == 409
    assert "积分不足" in resp.get_data(as_text=True)
    assert db.session.execute(select(PointsEntry)).first() is None


def test_member_search_by_card_or_phone(client, brand):
    _admin(client, brand)
    member = factories.member(phone="13912345678").id
    resp = client.get("/console/points/members?q=13912345678")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/members/{member}")
    other = factories.brand()
    with use_brand(other.id):
        factories.member(phone="13900000000")
    assert client.get("/console/points/members?q=13900000000").status_code == 404
    with use_brand(other.id):
        stranger = factories.member().id
    assert client.get(f"/console/points/members/{stranger}").status_code == 404


def test_settings_form_saves_and_rejects_bad_input(client, brand):
    _admin(client, brand)
    token = factories.csrf_token(client, "/console/points/settings")
    good = {
        "csrf_token": token,
        "earn_rate": "2",
        "pending_days": "14",
        "expiry_policy": "points_day",
        "expiry_months": "12",
        "points_day": "8",
        "remind_days": "7",
        "daily_cap": "5000",
        "exchange_points": "100",
        "exchange_yuan": "5",
        "welcome_points": "50",
        "change_template_id": "",
        "expiring_template_id": "",
    }
    assert client.post("/console/points/settings", data=good).status_code == 302
    bad = dict(good, points_day="31", earn_rate="3")
    resp = client.post("/console/points/settings", data=bad)
    assert resp.status_code == 400
    db.session.expire_all()
    s = rules.get_settings()
    assert (s.earn_permille, s.pending_days, s.expiry_policy, s.points_day) == (
        2000,
        14,
        "points_day",
        8,
    )


def test_campaign_form(client, brand):
    _admin(client, brand)
    token = factories.csrf_token(client, "/console/points/campaigns/new")
    data = {
        "csrf_token": token,
        "name": "会员日双倍",
        "multiplier": "2",
        "start_date": "2026-03-01",
        "end_date": "2026-03-31",
        "store_id": "",
        "category": "",
        "active": "y",
    }
    assert client.post("/console/points/campaigns/new", data=data).status_code == 302
    resp = client.post("/console/points/campaigns/new", data=dict(data, end_date="2026-02-01"))
    assert resp.status_code == 400
    rows = db.session.execute(select(PointsCampaign)).scalars().all()
    assert [(c.name, c.multiplier_permille) for c in rows] == [("会员日双倍", 2000)]
    assert "会员日双倍" in client.get("/console/points/campaigns").get_data(as_text=True)


def test_report_shows_liability(client, brand, member):
    _admin(client, brand)
    rules.update_settings(pending_days=0)
    services.earn_for_purchase(member_id=member, amount_fen=300_000, idempotency_key="o", now=T0)
    services.spend(member_id=member, points=1000, reason="mall", idempotency_key="s", now=T0)
    db.session.commit()
    html = client.get("/console/points/report").get_data(as_text=True)
    # 2000 points outstanding at 100 points = 5 yuan -> 100.00 yuan.
    assert 'id="liability-points">2000<' in html
    assert 'id="liability-value">¥100.00<' in html
    assert html.count("data-echart=") == 2 and "积分负债" in html


def test_points_member_page_masks_the_phone_and_reveal_is_audited(client, brand):
    _admin(client, brand)
    member = factories.member(phone="13912345678").id
    html = client.get(f"/console/points/members/{member}").get_data(as_text=True)
    assert "13912345678" not in html and "139****5678" in html
    seen = select(AuditLog).where(AuditLog.action == "view_phone")
    assert db.session.execute(seen).first() is None
    token = factories.csrf_token(client, f"/console/points/members/{member}")
    assert client.post(f"/console/points/members/{member}/phone").status_code == 400
    resp = client.post(f"/console/points/members/{member}/phone", data={"csrf_token": token})
    assert resp.status_code == 200 and "13912345678" in resp.get_data(as_text=True)
    row = db.session.execute(select(AuditLog).where(AuditLog.action == "view_phone")).scalar_one()
    assert row.object_id == str(member)
    # a store manager has no points pages; another brand's member is a 404
    other = factories.brand()
    with use_brand(other.id):
        stranger = factories.member(phone="13900000001").id
    resp = client.post(f"/console/points/members/{stranger}/phone", data={"csrf_token": token})
    assert resp.status_code == 404


def test_adjustment_note_stays_in_the_console_and_the_member_sees_the_reason(
    app, client, brand, member
):
    _admin(client, brand)
    html = client.get(f"/console/points/members/{member}").get_data(as_text=True)
    token = factories.csrf_token(client, f"/console/points/members/{member}")
    key = re.search(r'name="key"[^>]*value="([^"]+)"', html).group(1)
    data = {
        "csrf_token": token,
        "points": "50",
        "reason": "门店活动补发积分",
        "note": "投诉单 #8812，店长王确认",
        "key": key,
    }
    assert client.post(f"/console/points/members/{member}/adjust", data=data).status_code == 302
    entry = db.session.execute(select(PointsEntry)).scalar_one()
    assert entry.reason == "门店活动补发积分" and entry.note == "投诉单 #8812，店长王确认"
    console = client.get(f"/console/points/members/{member}").get_data(as_text=True)
    assert "门店活动补发积分" in console and "投诉单 #8812" in console
    phone = app.test_client()
    factories.sign_in_member(phone, brand, member)
    page = phone.get(f"/m/{brand.slug}/points").get_data(as_text=True)
    assert "门店活动补发积分" in page and "投诉单" not in page
