"""Member pages and the mini-program API find their brand in the process's brand cache
(``wechat.brand_cache``), checked against Redis on every request, and the signed-in member
with one light query."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sqlalchemy import text

from core.db import db
from core.tenancy import use_brand
from members import session as member_session
from members.merge import merge_members
from members.privacy import data_rights
from org.models import Brand
from tests import factories
from tests.support.apps import DATABASE_URL, REDIS_URL, build_app
from wechat import brand_cache

ROOT = __file__.rsplit("/tests/", 1)[0]


def _card(client, brand) -> str:
    res = client.get(f"/m/{brand.slug}/")
    assert res.status_code == 200, res.status_code
    return res.get_data(as_text=True)


def _rename_in_another_process(brand_id: int, name: str) -> None:
    """What an operator's change in the console or CLI does, from another process: the ORM
    change and its commit (whose hook tells Redis)."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        os.environ.update(DATABASE_URL={DATABASE_URL!r}, REDIS_URL={REDIS_URL!r})
        from app import create_app
        from config import TestConfig
        from core.db import db
        from org.models import Brand
        app = create_app(TestConfig(dict(os.environ)))
        with app.app_context():
            b = db.session.get(Brand, {brand_id})
            b.name = {name!r}
            db.session.commit()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)


def test_a_brand_change_in_another_process_reaches_the_next_member_page(app, brand):
    member = factories.member(phone="13900000001", activated=True).id
    client = app.test_client()
    factories.sign_in_member(client, brand, member)
    assert "Brand" in _card(client, brand) and brand.name in _card(client, brand)
    # Changed behind the app's back (no ORM, nobody tells Redis): the page keeps the cached
    # brand, which shows the cache is what it reads.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE brand SET name = '暗改' WHERE id = :b"), {"b": brand.id})
    assert "暗改" not in _card(client, brand)
    # Changed by another process the way the console and the CLI change it: seen at once.
    _rename_in_another_process(brand.id, "新名字")
    page = _card(client, brand)
    assert "新名字" in page and brand.name not in page


def test_another_app_instance_sees_a_change_made_through_the_console(app, brand):
    member = factories.member(phone="13900000002", activated=True).id
    other = build_app()  # another instance, as another gunicorn worker would be
    client = other.test_client()
    factories.sign_in_member(client, brand, member)
    assert brand.name in _card(client, brand)
    admin = factories.staff(brand, role="brand_admin")
    console = app.test_client()
    factories.login(console, brand, admin)
    form = console.get("/console/brand").get_data(as_text=True)
    res = console.post(
        "/console/brand",
        data={"csrf_token": factories.csrf(form), "name": "控制台改名", "timezone": "Asia/Tokyo"},
    )
    assert res.status_code in (200, 302, 303), res.get_data(as_text=True)[:500]
    with app.app_context():
        assert db.session.get(Brand, brand.id).name == "控制台改名"
    assert "控制台改名" in _card(client, brand)


def test_a_disabled_brand_refuses_member_pages_and_the_api(app, brand):
    member = factories.member(phone="13900000003", activated=True).id
    client = app.test_client()
    factories.sign_in_member(client, brand, member)
    _card(client, brand)  # cached now
    api = client.get(f"/api/mp/{brand.slug}/card")
    assert api.status_code == 401  # the brand is known; no token
    b = db.session.get(Brand, brand.id)
    b.active = False
    db.session.commit()
    assert client.get(f"/m/{brand.slug}/").status_code == 404
    assert client.get(f"/m/{brand.slug}/points").status_code == 404
    res = client.get(f"/api/mp/{brand.slug}/card")
    assert res.status_code == 404 and res.get_json()["error"]["code"]
    b.active = True
    db.session.commit()
    assert client.get(f"/m/{brand.slug}/").status_code == 200


def test_the_brand_is_read_once_then_only_checked_in_redis(app, brand):
    member = factories.member(phone="13900000004", activated=True).id
    client = app.test_client()
    factories.sign_in_member(client, brand, member)
    brand_cache.clear()
    loads: list[str] = []
    real = brand_cache._load
    brand_cache._load = lambda slug: loads.append(slug) or real(slug)
    try:
        for _ in range(3):
            _card(client, brand)
    finally:
        brand_cache._load = real
    assert loads == [brand.slug]


def test_the_light_member_has_what_pages_need(app, brand):
    guide = factories.staff(brand, role="guide", store=factories.store(brand))
    member = factories.member(phone="13900000005", name="王芳", activated=True, guide=guide)
    with app.test_request_context(f"/m/{brand.slug}/"), use_brand(brand.id):
        from flask import session

        session[f"member:{brand.id}"] = {"b": brand.id, "o": "o", "u": None, "m": member.id}
        light = member_session.current_member()
        assert light is not None
        assert (light.id, light.brand_id, light.card_no, light.phone, light.name) == (
            member.id,
            brand.id,
            member.card_no,
            "13900000005",
            "王芳",
        )
        assert (light.store_id, light.guide_id, light.tier_id) == (
            member.store_id,
            guide.id,
            member.tier_id,
        )
        assert light.activated_at == member.activated_at and light.holds_card


def test_a_merged_member_is_followed_and_a_deleted_one_signed_out(app, brand):
    kept = factories.member(phone="13900000006", activated=True).id
    merged = factories.member().id
    merge_members(kept_id=kept, merged_id=merged, reason="test")
    db.session.commit()
    client = app.test_client()
    factories.sign_in_member(client, brand, merged)
    page = _card(client, brand)
    card_no = db.session.execute(text("SELECT card_no FROM member WHERE id = :i"), {"i": kept})
    assert card_no.scalar_one() in page
    data_rights.delete_member(member_id=kept)
    db.session.commit()
    res = client.get(f"/m/{brand.slug}/")
    assert res.status_code == 302 and res.headers["Location"].endswith("/activate")


def test_another_brands_member_is_not_signed_in(app, brand):
    other = factories.brand()
    with use_brand(other.id):
        stranger = factories.member(phone="13900000007", activated=True).id
    client = app.test_client()
    # A cookie naming another brand's member under this brand's key finds nobody.
    factories.sign_in_member(client, brand, stranger)
    res = client.get(f"/m/{brand.slug}/")
    assert res.status_code == 302
