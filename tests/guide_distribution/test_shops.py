"""Guides' mini-shops: picking products and writing lines in the workbench, the share link and
the mini-program scene (tampered, foreign, guessed: refused), a visit recorded and the
binding rules applied, a guest bound when their card is activated, the poster."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from guide_distribution import shops
from guide_distribution.models import CustomerBinding, GuideProfile, GuideShopItem, GuideVisit
from members import api as mp
from tests import factories
from tests.shop.conftest import member, product
from tests.support.member_h5 import Phone


def _guide(shop):
    return factories.staff(shop.brand, role="guide", store=shop.store)


def _png(color=(200, 120, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 120), color).save(out, format="PNG")
    return out.getvalue()


def _open_shop(shop, guide, lines=("今年最好喝的乌龙",)):
    for line, sku in zip(lines, (shop.sku, shop.other_sku), strict=False):
        shops.add_item(guide_id=guide.id, product_id=sku.product_id, line=line)
    shops.update_profile(guide_id=guide.id, intro="在店里工作五年，懂茶。", photo=_png())
    db.session.commit()


def test_the_guide_builds_a_shop_in_the_workbench(client, shop):
    guide = _guide(shop)
    hidden = product(name="下架的壶", on_sale=False)
    factories.login(client, shop.brand, guide)
    page = client.get("/console/workbench/shop")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "我的小店" in html and "/m/" in html  # the share link
    picker = client.get("/console/workbench/shop/products?q=乌龙").get_data(as_text=True)
    assert "乌龙茶" in picker and "茶杯" not in picker
    token = factories.csrf(picker)
    r = client.post(
        "/console/workbench/shop/items",
        data={"csrf_token": token, "product_id": shop.sku.product_id, "line": "回甘很好"},
    )
    assert r.status_code == 303
    r = client.post(
        "/console/workbench/shop/items",
        data={"csrf_token": token, "product_id": hidden.product_id, "line": "x"},
        follow_redirects=True,
    )
    assert "该商品未上架" in r.get_data(as_text=True)
    r = client.post(
        "/console/workbench/shop/items",
        data={"csrf_token": token, "product_id": shop.other_sku.product_id, "line": "配套茶杯"},
    )
    items = db.session.execute(select(GuideShopItem).order_by(GuideShopItem.sort)).scalars().all()
    assert [(i.product_id, i.line) for i in items] == [
        (shop.sku.product_id, "回甘很好"),
        (shop.other_sku.product_id, "配套茶杯"),
    ]
    # move the cup up, change its line, then remove the tea
    second = items[1].id
    client.post(
        f"/console/workbench/shop/items/{second}",
        data={"csrf_token": token, "action": "up", "line": ""},
    )
    client.post(
        f"/console/workbench/shop/items/{second}",
        data={"csrf_token": token, "action": "save", "line": "一套更划算"},
    )
    client.post(
        f"/console/workbench/shop/items/{items[0].id}",
        data={"csrf_token": token, "action": "remove", "line": ""},
    )
    db.session.expire_all()
    left = db.session.execute(select(GuideShopItem)).scalars().all()
    assert [(i.product_id, i.line) for i in left] == [(shop.other_sku.product_id, "一套更划算")]
    # the face picture and the intro
    r = client.post(
        "/console/workbench/shop/profile",
        data={"csrf_token": token, "intro": "懂茶的导购", "photo": (io.BytesIO(_png()), "me.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 303
    r = client.post(
        "/console/workbench/shop/profile",
        data={"csrf_token": token, "intro": "x", "photo": (io.BytesIO(b"not an image"), "x.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400
    profile = db.session.execute(select(GuideProfile)).scalar_one()
    db.session.refresh(profile)
    assert profile.intro == "懂茶的导购" and profile.photo_key.endswith(".jpg")


def test_another_guides_item_is_404_and_a_manager_has_no_shop(client, shop):
    a, b = _guide(shop), _guide(shop)
    item = shops.add_item(guide_id=b.id, product_id=shop.sku.product_id, line="b")
    db.session.commit()
    factories.login(client, shop.brand, a)
    token = factories.csrf(client, "/console/workbench/shop")
    r = client.post(
        f"/console/workbench/shop/items/{item.id}",
        data={"csrf_token": token, "action": "remove", "line": ""},
    )
    assert r.status_code == 404
    assert db.session.get(GuideShopItem, item.id) is not None


def test_a_member_opening_the_share_link_sees_the_shop_and_is_bound(client, shop):
    guide = _guide(shop)
    _open_shop(shop, guide)
    m = member()
    token = shops.share_token(guide.id)
    factories.sign_in_member(client, shop.brand, m.id)
    r = client.get(f"/m/{shop.brand.slug}/guide/{token}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert guide.name in html and "今年最好喝的乌龙" in html and "在店里工作五年" in html
    assert f"/m/{shop.brand.slug}/shop/products/{shop.sku.product_id}" in html
    visit = db.session.execute(select(GuideVisit)).scalar_one()
    assert (visit.member_id, visit.guide_id) == (m.id, guide.id)
    b = db.session.execute(select(CustomerBinding)).scalar_one()
    assert (b.guide_id, b.source) == (guide.id, "share_link")
    first_at = visit.last_at
    client.get(f"/m/{shop.brand.slug}/guide/{token}")
    db.session.expire_all()
    visit = db.session.execute(select(GuideVisit)).scalar_one()  # one row, last_at moved
    assert visit.last_at >= first_at


def test_a_tampered_or_foreign_share_link_is_404(client, shop):
    guide = _guide(shop)
    token = shops.share_token(guide.id)
    other = factories.brand()
    stranger = factories.staff(other, role="guide", store=factories.store(other))
    with use_brand(other.id):
        foreign = shops.share_token(stranger.id)
    assert client.get(f"/m/{shop.brand.slug}/guide/{token[:-2]}xx").status_code == 404
    assert client.get(f"/m/{shop.brand.slug}/guide/{foreign}").status_code == 404
    # the other brand's guide id under this brand's signature is still not this brand's
    forged = shops._serializer().dumps([shop.brand.id, stranger.id])
    assert client.get(f"/m/{shop.brand.slug}/guide/{forged}").status_code == 404
    guide.active = False
    db.session.commit()
    assert client.get(f"/m/{shop.brand.slug}/guide/{token}").status_code == 404


def test_a_guest_who_opens_the_link_then_activates_is_bound_by_the_link(
    wx_ctx, wx_brand, wx_client, wx_consumer
):
    with use_brand(wx_brand.id):
        store = factories.store(wx_brand)
        guide = factories.staff(wx_brand, role="guide", store=store)
        token = shops.share_token(guide.id)
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()  # the WeChat OAuth: a guest, no member yet
    r = wx_client.get(f"/m/{wx_brand.slug}/guide/{token}")
    assert r.status_code == 200 and "领取会员卡" in r.get_data(as_text=True)
    with use_brand(wx_brand.id):
        assert db.session.execute(select(GuideVisit)).first() is None
    phone.request_code("13912340000")
    assert phone.activate("13912340000").status_code in (302, 303)
    with use_brand(wx_brand.id):
        b = db.session.execute(select(CustomerBinding)).scalar_one()
        assert (b.guide_id, b.store_id, b.source) == (guide.id, store.id, "share_link")
        assert db.session.execute(select(GuideVisit.member_id)).scalar_one() == b.member_id


def test_a_member_scanning_a_guides_code_through_wechat_is_bound(
    wx_ctx, wx_brand, wx_client, wx_consumer
):
    from members.activation import qrcodes

    with use_brand(wx_brand.id):
        store = factories.store(wx_brand)
        guide = factories.staff(wx_brand, role="guide", store=store)
        qr = qrcodes.ensure_guide_qr(staff_id=guide.id)
        db.session.commit()
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    phone.request_code("13912340001")
    phone.activate("13912340001")  # no guide yet: no binding
    with use_brand(wx_brand.id):
        assert db.session.execute(select(CustomerBinding)).first() is None
    phone.scan(qr)
    with use_brand(wx_brand.id):
        db.session.expire_all()
        b = db.session.execute(select(CustomerBinding)).scalar_one()
        assert (b.guide_id, b.store_id, b.source) == (guide.id, store.id, "scan")


def test_the_mini_program_scene_resolves_to_the_shop_and_records_the_visit(client, shop):
    guide = _guide(shop)
    _open_shop(shop, guide)
    profile = shops.profile_of(guide.id)
    scene = shops.scene_of(profile)
    assert len(scene) <= 32
    r = client.get(f"/api/mp/{shop.brand.slug}/guide-shops/{scene}")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["guide"]["name"] == guide.name and body["visit_recorded"] is False
    assert body["guide"]["photo_url"].startswith("http")
    assert [i["line"] for i in body["items"]] == ["今年最好喝的乌龙"]
    assert body["items"][0]["product"]["price_fen"] == 2000
    m = member()
    token = mp.create_session(
        brand_id=shop.brand.id, openid=f"mp-{m.id}", unionid=None, session_key=""
    )
    r = client.get(
        f"/api/mp/{shop.brand.slug}/guide-shops/{scene}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.json["visit_recorded"] is True
    assert db.session.execute(select(GuideVisit.member_id)).scalar_one() == m.id


def test_a_tampered_guessed_or_foreign_scene_is_refused(client, shop):
    guide = _guide(shop)
    scene = shops.scene_of(shops.ensure_profile(guide_id=guide.id))
    db.session.commit()
    other = factories.brand()
    stranger = factories.staff(other, role="guide", store=factories.store(other))
    with use_brand(other.id):
        foreign = shops.scene_of(shops.ensure_profile(guide_id=stranger.id))
        db.session.commit()
    tampered = scene[:-1] + ("A" if scene[-1] != "A" else "B")
    for bad in (tampered, foreign, f"g={guide.id}", f"g:{guide.id}", "g=" + "x" * 40):
        r = client.get(f"/api/mp/{shop.brand.slug}/guide-shops/{bad}")
        assert r.status_code == 404, bad
        assert r.json["error"]["code"] == "not_found"
    assert db.session.execute(select(GuideVisit)).first() is None


def test_the_poster_carries_the_mini_program_code(wx_ctx, wx_brand, wx_client):
    with use_brand(wx_brand.id):
        store = factories.store(wx_brand)
        guide = factories.staff(wx_brand, role="guide", store=store)
        factories.login(wx_client, wx_brand, guide)
        assert wx_client.get("/console/workbench/shop/poster.png").status_code == 404
        token = factories.csrf(wx_client, "/console/workbench/shop")
        r = wx_client.post("/console/workbench/shop/code", data={"csrf_token": token})
        assert r.status_code == 303
        profile = shops.profile_of(guide.id)
        db.session.refresh(profile)
        assert profile.wxacode_key
        from wechat.sandbox import store as sandbox_store

        doc = sandbox_store.get_doc("wxacode", wx_brand.mp_appid, shops.scene_of(profile))
        assert doc["scene"] == "g=" + profile.token
        r = wx_client.get("/console/workbench/shop/poster.png")
        assert r.status_code == 200 and r.mimetype == "image/png"
        img = Image.open(io.BytesIO(r.data))
        assert img.size == (750, 1200)
