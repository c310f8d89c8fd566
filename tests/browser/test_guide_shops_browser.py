"""In headless Chromium: a guide builds their shop on the phone in the workbench, and a
consumer opens the guide's share link at 390x844 in WeChat's browser and sees the guide's
face, name, line and products (and becomes the guide's customer)."""

from __future__ import annotations

import os

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.storage import LocalStorage
from core.tenancy import use_brand
from guide_distribution import shops
from guide_distribution.models import CustomerBinding
from tests import factories
from tests.browser.walk import WECHAT_UA, Walker, console_login
from tests.shop.catalog_helpers import png, product


def _shots(tmp_path) -> str:
    return os.environ.get("WMB_WALKTHROUGH_SHOTS") or str(tmp_path)


def _seed(app):
    with app.app_context():
        b = factories.brand(name="茶语")
        store = factories.store(b, name="南京西路店")
        guide = factories.staff(b, role="guide", store=store)
        with use_brand(b.id):
            from core import storage

            keys = [
                storage.save_image(png(400, 400, colour=c), prefix=f"shop/b{b.id}")
                for c in ((170, 110, 60), (60, 120, 90))
            ]
            p1 = product("T1", name="高山乌龙", images=[keys[0]])
            p2 = product("T2", name="明前龙井", images=[keys[1]])
            shops.add_item(guide_id=guide.id, product_id=p1.id, line="回甘明显，冷泡也好喝")
            shops.add_item(guide_id=guide.id, product_id=p2.id, line="今年的新茶")
            shops.update_profile(
                guide_id=guide.id,
                intro="在店里五年，懂茶也懂你。",
                photo=png(300, 300, (220, 150, 160)),
            )
            m = factories.member(phone="13900006666", name="李雷", activated=True, openid="o-gd-1")
            db.session.commit()
            data = {
                "brand_id": b.id,
                "slug": b.slug,
                "guide_id": guide.id,
                "guide_name": guide.name,
                "guide_phone": guide.phone,
                "member_id": m.id,
                "token": shops.share_token(guide.id),
            }
        db.session.remove()
    return data


def _member_cookie(live_server, brand_id: int, member_id: int) -> dict:
    app = live_server.app
    value = app.session_interface.get_signing_serializer(app).dumps(
        {f"member:{brand_id}": {"b": brand_id, "o": "o-gd-1", "u": None, "m": member_id}}
    )
    return {"name": app.config.get("SESSION_COOKIE_NAME", "session"), "value": value,
            "url": live_server.url}  # fmt: skip


def _phone(browser, live_server):
    return browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )


def test_a_consumer_opens_a_guides_share_link_in_wechat(browser, live_server, tmp_path):
    saved = live_server.app.extensions["storage"]
    live_server.app.extensions["storage"] = LocalStorage(str(tmp_path / "uploads"))
    try:
        data = _seed(live_server.app)
        # the guide's own page, on the phone
        guide_ctx = _phone(browser, live_server)
        w = Walker(guide_ctx, "guide-shop")
        console_login(w, data["slug"], data["guide_phone"], factories.PASSWORD)
        page = w.page
        w.open("/console/workbench/shop")
        expect(page.locator("[data-testid=my-products] input[name=line]").first).to_have_value(
            "回甘明显，冷泡也好喝"
        )
        expect(page.locator("[data-testid=share-url]")).to_have_text(
            f"{live_server.url}/m/{data['slug']}/guide/{data['token']}"
        )
        page.screenshot(
            path=os.path.join(_shots(tmp_path), "guide-workbench-shop.png"), full_page=True
        )
        w.check()
        guide_ctx.close()

        # the consumer
        ctx = _phone(browser, live_server)
        ctx.add_cookies([_member_cookie(live_server, data["brand_id"], data["member_id"])])
        w = Walker(ctx, "guide-share-link")
        page = w.page
        w.open(f"/m/{data['slug']}/guide/{data['token']}", form=False)
        expect(page.get_by_test_id("guide-name")).to_have_text(data["guide_name"])
        face = page.locator("img[data-testid=guide-face]")
        expect(face).to_be_visible()
        assert page.evaluate("(img) => img.naturalWidth > 0", face.element_handle())
        cards = page.locator("[data-testid=products] .s-card")
        expect(cards).to_have_count(2)
        expect(cards.first).to_contain_text("高山乌龙")
        expect(cards.first).to_contain_text("回甘明显，冷泡也好喝")
        expect(page.locator("main")).to_contain_text("南京西路店 导购")
        for img in page.locator("[data-testid=products] img").element_handles():
            assert page.evaluate("(i) => i.complete && i.naturalWidth > 0", img)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=os.path.join(_shots(tmp_path), "guide-share-link.png"), full_page=True)
        w.follow(cards.first.locator("a"), form=False)
        assert "/shop/products/" in page.url
        w.check()
        ctx.close()
        with live_server.app.app_context(), use_brand(data["brand_id"]):
            b = db.session.execute(select(CustomerBinding)).scalar_one()
            assert (b.member_id, b.guide_id, b.source) == (
                data["member_id"],
                data["guide_id"],
                "share_link",
            )
            db.session.remove()
    finally:
        live_server.app.extensions["storage"] = saved
