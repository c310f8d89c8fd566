"""The catalog in headless Chromium: the admin types a product into the console form, adds
an SKU row, picks an image (previewed before upload) and saves; a member browses the list
and opens the product at 390x844 in WeChat's browser, picks an SKU and a quantity, and the
form posts them to the cart URL."""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse

from playwright.sync_api import expect

from core.db import db, utcnow
from core.storage import LocalStorage
from core.tenancy import use_brand
from shop import catalog
from tests import factories
from tests.browser.walk import WECHAT_UA, Walker, console, console_login
from tests.shop.catalog_helpers import png, product, sku


def _shots(tmp_path) -> str:
    return os.environ.get("WMB_WALKTHROUGH_SHOTS") or str(tmp_path)


def _use_tmp_storage(live_server, tmp_path):
    saved = live_server.app.extensions["storage"]
    live_server.app.extensions["storage"] = LocalStorage(str(tmp_path / "uploads"))
    return saved


def test_console_product_form(browser, live_server, ctx, tmp_path):
    saved = _use_tmp_storage(live_server, tmp_path)
    b = factories.brand()
    admin = factories.staff(b, "brand_admin")
    with use_brand(b.id):
        catalog.create_category(code="tops", name="上衣")
        db.session.commit()
    image = tmp_path / "shirt.png"
    image.write_bytes(png(300, 300, colour=(30, 90, 160)))
    w = console(browser, live_server.url, "catalog")
    try:
        console_login(w, b.slug, admin.phone, factories.PASSWORD)
        page = w.page
        w.open("/console/shop/products")
        expect(page.locator("nav.nav [data-group=shop]")).to_contain_text("商品")
        w.follow(page.get_by_role("link", name="新建商品").first)
        page.get_by_label("商品编码").fill("T100")
        page.get_by_label("商品名称").fill("经典圆领T恤")
        page.get_by_label("商品品类").select_option(label="上衣")
        page.get_by_label("副标题").fill("100%棉")
        page.get_by_label("已上架").check()
        rows = page.locator("[data-sku-row]")
        rows.nth(0).get_by_label("SKU 编码").fill("T100-M")
        rows.nth(0).get_by_label("规格").fill("颜色:黑;尺码:M")
        rows.nth(0).get_by_label("售价（元）").fill("99")
        rows.nth(0).get_by_label("划线价（元）").fill("129")
        rows.nth(0).get_by_label("初始库存").fill("12")
        page.get_by_role("button", name="添加 SKU").click()
        expect(rows).to_have_count(2)
        rows.nth(1).get_by_label("SKU 编码").fill("T100-L")
        rows.nth(1).get_by_label("规格").fill("颜色:黑;尺码:L")
        rows.nth(1).get_by_label("售价（元）").fill("99")
        rows.nth(1).get_by_label("初始库存").fill("3")
        page.get_by_role("button", name="添加 SKU").click()
        expect(rows).to_have_count(3)
        rows.nth(2).get_by_role("button", name="移除").click()
        expect(rows).to_have_count(2)
        page.get_by_label("添加图片（JPEG、PNG、WebP）").set_input_files(str(image))
        expect(page.locator("[data-image-previews] img")).to_have_count(1)
        page.screenshot(
            path=os.path.join(_shots(tmp_path), "catalog-product-form.png"), full_page=True
        )
        w.submit(page.get_by_role("button", name="保存"))
        w.saved()
        expect(page.locator("[data-images] img")).to_have_count(1)
        assert page.evaluate("document.querySelector('[data-images] img').naturalWidth") == 300
        w.follow(page.get_by_role("link", name="返回商品列表"))
        row = page.locator("tr[data-product=T100]")
        expect(row).to_contain_text("经典圆领T恤")
        expect(row.locator("li[data-sku]")).to_have_count(2)
        expect(row.locator("li.shop-low")).to_contain_text("库存 3 · 库存紧张")
        # the stock dialog
        row.locator("li", has_text="黑 / M").get_by_role("button", name="调整库存").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("当前库存: 12")
        dialog.get_by_label("变动数量（正数入库，负数出库）").fill("-2")
        dialog.get_by_label("原因").fill("盘点")
        page.screenshot(path=os.path.join(_shots(tmp_path), "catalog-stock-dialog.png"))
        w.submit(dialog.get_by_role("button", name="保存"))
        w.saved("T100-M 的库存已变动 -2。")
        expect(page.locator("li[data-sku=T100-M]")).to_contain_text("库存 10")
        page.screenshot(path=os.path.join(_shots(tmp_path), "catalog-products.png"), full_page=True)
        for url in (
            "/console/shop/categories",
            "/console/shop/flash-sales",
            "/console/shop/import",
        ):
            w.open(url)
            page.screenshot(
                path=os.path.join(_shots(tmp_path), f"catalog-{url.rsplit('/', 1)[1]}.png"),
                full_page=True,
            )
        w.check()
    finally:
        w.context.close()
        live_server.app.extensions["storage"] = saved


def test_member_browses_and_the_form_posts_the_chosen_sku(browser, live_server, ctx, tmp_path):
    saved = _use_tmp_storage(live_server, tmp_path)
    b = factories.brand()
    try:
        with use_brand(b.id), live_server.app.app_context():
            from core import storage

            tops = catalog.create_category(code="tops", name="上衣")
            key = storage.save_image(png(400, 400, colour=(200, 60, 60)), prefix=f"shop/b{b.id}")
            p = product(
                "T100", name="经典圆领T恤", category_id=tops.id, images=[key],
                limit_per_member=2, subtitle="100%棉", description="舒适透气。\n四季百搭。",
            )  # fmt: skip
            for i in range(5):
                product(f"Q{i}", name=f"商品{i}", skus=[sku(f"Q{i}-1", stock=0 if i == 1 else 4)])
            m, big = p.id, None
            from shop.catalog_queries import skus_by_product

            now = utcnow()
            catalog.create_flash_sale(
                sku_id=skus_by_product([m])[m][1].id, name="L码秒杀", price_fen=4900,
                quantity=3, per_member_limit=2, starts_at=now - dt.timedelta(minutes=1),
                ends_at=now + dt.timedelta(hours=1),
            )  # fmt: skip
            db.session.commit()
        context = browser.new_context(
            base_url=live_server.url,
            locale="zh-CN",
            viewport={"width": 390, "height": 844},
            user_agent=WECHAT_UA,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        w = Walker(context, "member-shop")
        page = w.page
        posted = {}

        def cart(route):
            posted["url"] = route.request.url
            posted["form"] = urllib.parse.parse_qs(route.request.post_data)
            route.fulfill(status=200, content_type="text/html", body="<p>ok</p>")

        page.route(re.compile(r".*/shop/cart$"), cart)
        try:
            w.open(f"/m/{b.slug}/shop", form=False)
            expect(page.get_by_test_id("products").locator("li")).to_have_count(6)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(
                path=os.path.join(_shots(tmp_path), "member-shop-list.png"), full_page=True
            )
            w.follow(page.get_by_role("link", name="上衣"), form=False)
            expect(page.get_by_test_id("products").locator("li")).to_have_count(1)
            w.follow(page.get_by_role("link", name=re.compile("经典圆领T恤")), form=False)
            expect(page.locator("[data-price]")).to_have_text("¥99.00")
            expect(page.locator("[data-original]")).to_have_text("¥129.00")
            expect(page.get_by_text("每人限购 2 件")).to_be_visible()
            wide = page.evaluate(
                "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
                ".right > 390).map(e => e.tagName + '.' + e.className)"
            )
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
            add_to_cart = page.get_by_role("button", name="加入购物车")
            expect(add_to_cart).to_be_visible()
            page.get_by_text("黑 / L").click()
            expect(page.locator("[data-stock]")).to_have_text("仅剩 3 件")
            # The L is in a flash sale: its price, and it is bought at once, not carted.
            expect(page.locator("[data-price]")).to_have_text("¥49.00")
            expect(add_to_cart).to_be_hidden()
            page.get_by_role("button", name="增加一件").click()
            page.get_by_role("button", name="增加一件").click()  # the limit stops it at 2
            expect(page.get_by_label("数量")).to_have_value("2")
            page.screenshot(
                path=os.path.join(_shots(tmp_path), "member-shop-detail.png"), full_page=True
            )
            page.get_by_role("button", name="立即购买").click()
            expect(page.get_by_text("ok")).to_be_visible()
            with use_brand(b.id):
                from shop.catalog_queries import skus_by_product

                big = skus_by_product([m])[m][1]
            assert posted["url"].endswith(f"/m/{b.slug}/shop/cart")
            form = posted["form"]
            assert form["sku_id"] == [str(big.id)] and form["quantity"] == ["2"]
            assert form["buy_now"] == ["1"] and form["csrf_token"][0]
            w.check()
        finally:
            context.close()
    finally:
        live_server.app.extensions["storage"] = saved
