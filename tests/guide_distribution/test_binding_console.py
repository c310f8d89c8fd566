"""The binding console pages: the rules, a customer's binding with its history and a forced
change (the third refused on the page), a guide's customers handed over (now and as a job),
another brand's ids answering 404."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from core.jobs import OutboxJob, run_outbox_job
from guide_distribution import settings
from guide_distribution.models import BindingEvent, CustomerBinding
from members.activation import record_scan
from tests import factories
from tests.shop.conftest import member


def _admin(client, shop):
    admin = factories.staff(shop.brand, role="brand_admin")
    factories.login(client, shop.brand, admin)
    return admin


def _bound(shop, guide, n=1):
    ms = []
    for _ in range(n):
        m = member()
        record_scan(member_id=m.id, guide_id=guide.id, store_id=guide.store_id)
        ms.append(m)
    db.session.commit()
    return ms


def test_the_rules_page_saves_the_binding_rules(client, shop):
    _admin(client, shop)
    page = client.get("/console/distribution/binding/rules")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "绑定规则" in html and "首个导购优先" in html
    token = factories.csrf(html)
    r = client.post(
        "/console/distribution/binding/rules",
        data={
            "csrf_token": token,
            "bind_mode": "every_scan",
            "validity": "days",
            "validity_days": "180",
            "protection_days": "30",
            "link_days": "7",
        },
    )
    assert r.status_code == 302
    s = settings.get_settings()
    assert (s.bind_mode, s.validity_days, s.protection_days) == ("every_scan", 180, 30)
    bad = client.post(
        "/console/distribution/binding/rules",
        data={
            "csrf_token": token,
            "bind_mode": "first",
            "validity": "days",
            "validity_days": "",
            "protection_days": "400",
            "link_days": "7",
        },
    )
    assert bad.status_code == 400
    assert "请填写天数" in bad.get_data(as_text=True)
    db.session.expire_all()
    assert settings.get_settings().bind_mode == "every_scan"  # nothing written
    r = client.post(
        "/console/distribution/binding/rules",
        data={
            "csrf_token": token,
            "bind_mode": "first",
            "validity": "permanent",
            "validity_days": "",
            "protection_days": "15",
            "link_days": "7",
        },
    )
    db.session.expire_all()
    assert settings.get_settings().validity_days is None


def test_a_customers_binding_history_and_forced_changes_on_the_page(client, shop):
    admin = _admin(client, shop)
    a, b, c = (factories.staff(shop.brand, role="guide", store=shop.store) for _ in range(3))
    (m,) = _bound(shop, a)
    page = client.get(f"/console/distribution/binding/customers?member={m.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and a.name in html and "扫码" in html and "剩余次数：2" in html
    token = factories.csrf(html)
    url = f"/console/distribution/binding/customers/{m.id}/force"
    no_reason = client.post(url, data={"csrf_token": token, "guide": str(b.id), "reason": ""})
    assert no_reason.status_code == 400
    for guide in (b, c):
        r = client.post(
            url, data={"csrf_token": token, "guide": str(guide.id), "reason": "顾客要求"}
        )
        assert r.status_code == 303
    third = client.post(url, data={"csrf_token": token, "guide": str(a.id), "reason": "再换"})
    assert third.status_code == 409
    assert "已被强制变更绑定 2 次" in third.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.execute(select(CustomerBinding)).scalar_one()
    assert row.guide_id == c.id
    html = client.get(f"/console/distribution/binding/customers?member={m.id}").get_data(
        as_text=True
    )
    assert "运营强制变更" in html and admin.name in html and "顾客要求" in html


def test_another_brands_member_or_guide_is_404(client, shop):
    _admin(client, shop)
    other = factories.brand()
    stranger = factories.staff(other, role="guide", store=factories.store(other))
    from core.tenancy import use_brand

    with use_brand(other.id):
        foreign_member = factories.member(phone="13700001111")
    assert client.get(f"/console/distribution/binding/guides/{stranger.id}").status_code == 404
    token = factories.csrf(client, "/console/distribution/binding/customers")
    r = client.post(
        f"/console/distribution/binding/customers/{foreign_member.id}/force",
        data={"csrf_token": token, "guide": "1", "reason": "x"},
    )
    assert r.status_code == 404
    (m,) = _bound(shop, factories.staff(shop.brand, role="guide", store=shop.store))
    r = client.post(
        f"/console/distribution/binding/customers/{m.id}/force",
        data={"csrf_token": token, "guide": str(stranger.id), "reason": "x"},
    )
    assert r.status_code == 400  # not among the brand's guides


def test_a_leaving_guides_customers_are_handed_over_from_the_page(client, shop):
    _admin(client, shop)
    leaving, b, c = (factories.staff(shop.brand, role="guide", store=shop.store) for _ in range(3))
    customers = _bound(shop, leaving, 4)
    page = client.get(f"/console/distribution/binding/guides/{leaving.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "交接顾客" in html and "4 位顾客" in html
    token = factories.csrf(html)
    r = client.post(
        f"/console/distribution/binding/guides/{leaving.id}/hand-over",
        data={"csrf_token": token, "mode": "spread", "reason": "离职"},
    )
    assert r.status_code == 303
    status = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已交接 4 位顾客" in status and b.name in status and c.name in status
    db.session.expire_all()
    rows = db.session.execute(select(CustomerBinding)).scalars().all()
    assert sorted(x.guide_id for x in rows) == sorted([b.id, b.id, c.id, c.id])
    assert {x.member_id for x in rows} == {m.id for m in customers}
    named = client.post(
        f"/console/distribution/binding/guides/{b.id}/hand-over",
        data={"csrf_token": token, "mode": "named"},
    )
    assert named.status_code == 400 and "请选择一位导购" in named.get_data(as_text=True)


def test_a_big_hand_over_runs_as_a_job_with_progress(app, client, shop):
    admin = _admin(client, shop)
    leaving, b = (factories.staff(shop.brand, role="guide", store=shop.store) for _ in range(2))
    _bound(shop, leaving, 5)
    app.config["GUIDE_HANDOVER_INLINE"] = 2
    try:
        token = factories.csrf(client, f"/console/distribution/binding/guides/{leaving.id}")
        r = client.post(
            f"/console/distribution/binding/guides/{leaving.id}/hand-over",
            data={"csrf_token": token, "mode": "named", "to_guide": str(b.id)},
        )
    finally:
        app.config.pop("GUIDE_HANDOVER_INLINE")
    assert r.status_code == 303
    waiting = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "正在交接：0 / 5" in waiting
    job = db.session.execute(select(OutboxJob)).scalars().all()[-1]
    assert run_outbox_job(job.id) == "done"
    done = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已交接 5 位顾客" in done
    rows = db.session.execute(select(CustomerBinding.guide_id)).scalars().all()
    assert rows == [b.id] * 5
    moved = db.session.execute(
        select(BindingEvent.actor_kind, BindingEvent.actor_id).where(
            BindingEvent.source == "guide_left"
        )
    ).all()
    assert moved == [("staff", admin.id)] * 5  # the job records the operator who started it
