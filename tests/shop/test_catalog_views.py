"""Catalog pages and API through the real routes: the console (list with search, filters and
low stock, the product form with SKU rows and images, categories, stock dialog, flash sales,
import), the member pages (list by category, detail with its cart form) and the mini-program
API with its OpenAPI document."""

from __future__ import annotations

import datetime as dt
import io
import re

from sqlalchemy import select

from core.db import db, utcnow
from core.tenancy import use_brand
from shop import catalog
from shop.models import Category, FlashSale, Product, Sku, StockEntry
from tests import factories
from tests.shop.catalog_helpers import local_storage, png, product, sku  # noqa: F401


def _admin(client, brand):
    factories.login(client, brand, factories.staff(brand, "brand_admin"))


def _skus(p) -> list[Sku]:
    return list(db.session.scalars(select(Sku).where(Sku.product_id == p.id).order_by(Sku.id)))


def test_console_needs_a_brand_admin(client, brand):
    store = factories.store(brand)
    factories.login(client, brand, factories.staff(brand, "store_manager", store=store))
    assert client.get("/console/shop/products").status_code == 403
    anonymous = client.application.test_client()
    assert anonymous.get("/console/shop/products").status_code == 302


def test_product_list_search_filters_and_low_stock(client, brand):
    cat = catalog.create_category(code="tops", name="上衣")
    product("T100", name="圆领T恤", category_id=cat.id)
    product("B100", name="牛仔裤", on_sale=False, skus=[sku("B100-30", stock=0)])
    _admin(client, brand)
    html = client.get("/console/shop/products").get_data(as_text=True)
    assert "圆领T恤" in html and "牛仔裤" in html and "共 2 条" in html
    assert "黑 / M" in html and "¥99.00" in html and "库存 3 · 库存紧张" in html
    assert "库存 0 · 已售罄" in html and 'class="shop-low"' in html
    assert "调整库存" in html and "上架" in html and "下架" in html
    html = client.get("/console/shop/products?q=T恤").get_data(as_text=True)
    assert "圆领T恤" in html and "牛仔裤" not in html
    html = client.get("/console/shop/products?q=B100-30").get_data(as_text=True)
    assert "牛仔裤" in html and "圆领T恤" not in html
    html = client.get(f"/console/shop/products?category_id={cat.id}").get_data(as_text=True)
    assert "圆领T恤" in html and "牛仔裤" not in html
    html = client.get("/console/shop/products?on_sale=0").get_data(as_text=True)
    assert "牛仔裤" in html and "圆领T恤" not in html
    html = client.get("/console/shop/products?q=没有").get_data(as_text=True)
    assert "没有符合条件的商品。" in html


def test_product_list_pages_by_keyset(client, brand):
    for i in range(35):
        product(f"P{i:02d}", skus=[sku(f"P{i:02d}-1")], commit=False)
    db.session.commit()
    _admin(client, brand)
    html = client.get("/console/shop/products").get_data(as_text=True)
    codes = re.findall(r'data-product="(P\d+)"', html)
    assert len(codes) == 30 and codes[0] == "P34"
    nxt = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    rest = re.findall(r'data-product="(P\d+)"', client.get(nxt).get_data(as_text=True))
    assert rest == ["P04", "P03", "P02", "P01", "P00"]


def test_product_form_creates_with_sku_rows_and_images(client, brand, local_storage):  # noqa: F811
    cat = catalog.create_category(code="tops", name="上衣")
    db.session.commit()
    _admin(client, brand)
    html = client.get("/console/shop/products/new").get_data(as_text=True)
    assert "新建商品" in html and "添加 SKU" in html and "上衣" in html
    data = {
        "csrf_token": factories.csrf(html),
        "code": "T100",
        "name": "圆领T恤",
        "category_id": str(cat.id),
        "subtitle": "纯棉",
        "description": "",
        "limit_per_member": "2",
        "sort": "5",
        "on_sale": "y",
        "sku_id": ["", ""],
        "sku_code": ["T100-M", "T100-L"],
        "sku_spec": ["尺码:M", "尺码：L"],
        "sku_price": ["99", "99.50"],
        "sku_original": ["129", ""],
        "sku_stock": ["10", "4"],
        "new_images": [(io.BytesIO(png(120, 120)), "a.png"), (io.BytesIO(png(90, 90)), "b.png")],
    }
    r = client.post("/console/shop/products/new", data=data, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)
    p = db.session.scalars(select(Product)).one()
    assert (p.name, p.category_id, p.limit_per_member, p.sort, p.on_sale) == (
        "圆领T恤", cat.id, 2, 5, True,
    )  # fmt: skip
    assert len(p.images) == 2 and all(k.startswith(f"shop/b{brand.id}/") for k in p.images)
    assert [(s.code, s.spec, s.price_fen, s.original_price_fen, s.stock) for s in _skus(p)] == [
        ("T100-M", {"尺码": "M"}, 9900, 12900, 10),
        ("T100-L", {"尺码": "L"}, 9950, 0, 4),
    ]
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已保存。" in page and page.count('name="image"') == 2
    for key in p.images:
        assert f"/files/{key}" in page and client.get(f"/files/{key}").status_code == 200

    # Edit: drop the first image, change a price, remove the L row, add an XL row.
    m, big = _skus(p)
    data = {
        "csrf_token": factories.csrf(page),
        "code": "T100",
        "name": "圆领T恤",
        "category_id": str(cat.id),
        "limit_per_member": "2",
        "sort": "5",
        "on_sale": "y",
        "image": [p.images[1], "shop/b999/" + "a" * 64 + ".jpg"],  # not this brand's: dropped
        "sku_id": [str(m.id), ""],
        "sku_code": ["T100-M", "T100-XL"],
        "sku_spec": ["尺码:M", "尺码:XL"],
        "sku_price": ["89", "109"],
        "sku_original": ["129", ""],
        "sku_stock": ["", "6"],
    }
    r = client.post(f"/console/shop/products/{p.id}", data=data)
    assert r.status_code == 302
    db.session.expire_all()
    assert p.images == [data["image"][0]]
    rows = {s.code: (s.price_fen, s.stock, s.active) for s in _skus(p)}
    assert rows == {
        "T100-M": (8900, 10, True),
        "T100-L": (9950, 4, False),
        "T100-XL": (10900, 6, True),
    }


def test_product_form_errors_land_on_their_row_and_write_nothing(client, brand, local_storage):  # noqa: F811
    _admin(client, brand)
    html = client.get("/console/shop/products/new").get_data(as_text=True)
    base = {
        "csrf_token": factories.csrf(html),
        "code": "T100",
        "name": "圆领T恤",
        "category_id": "0",
        "limit_per_member": "0",
        "sort": "0",
        "sku_id": ["", ""],
        "sku_code": ["T100-M", "T100-L"],
        "sku_spec": ["尺码:M", "尺码:L"],
        "sku_price": ["99", "12.505"],
        "sku_original": ["", ""],
        "sku_stock": ["1", "1"],
    }
    r = client.post("/console/shop/products/new", data=base)
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "请检查 SKU 各行。" in page
    assert "请输入以元为单位的金额，如 12.50。" in page
    assert 'value="12.505"' in page and 'value="T100-L"' in page  # what was typed stays
    r = client.post(
        "/console/shop/products/new",
        data={**base, "sku_price": ["99", "99"], "sku_spec": ["尺码:M", "尺码:M"]},
    )
    assert r.status_code == 400 and "有两个 SKU 的规格相同。" in r.get_data(as_text=True)
    r = client.post(
        "/console/shop/products/new",
        data={
            **base,
            "sku_price": ["99", "99"],
            "new_images": [(io.BytesIO(b"GIF89a nope"), "x.gif")],
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 400 and "文件不是 JPEG、PNG、WebP 或 GIF 图片。" in r.get_data(
        as_text=True
    )
    r = client.post("/console/shop/products/new", data={**base, "csrf_token": "forged"})
    assert r.status_code == 400
    assert db.session.scalars(select(Product)).all() == []
    assert not any(local_storage.root.rglob("*.jpg"))


def test_another_brands_product_is_404_in_the_console(client, brand):
    other = factories.brand()
    with use_brand(other.id):
        theirs = product("X1")
        sku_id = _skus(theirs)[0].id
    _admin(client, brand)
    assert client.get(f"/console/shop/products/{theirs.id}").status_code == 404
    assert client.get(f"/console/shop/products/{10**30}").status_code == 404
    html = client.get("/console/shop/products").get_data(as_text=True)
    r = client.post(
        f"/console/shop/skus/{sku_id}/stock",
        data={"csrf_token": factories.csrf(html), "delta": "5", "note": "x", "request_key": "k"},
    )
    assert r.status_code == 404
    with use_brand(other.id):
        assert db.session.get(Sku, sku_id).stock == 10


def test_stock_dialog_and_on_sale_toggle(client, brand):
    p = product("T100")
    m = _skus(p)[0]
    _admin(client, brand)
    html = client.get("/console/shop/products").get_data(as_text=True)
    key = re.search(r'name="request_key" value="([^"]+)"', html).group(1)
    data = {"csrf_token": factories.csrf(html), "delta": "-4", "note": "破损", "request_key": key}
    for _ in range(2):  # a double click changes the stock once
        r = client.post(f"/console/shop/skus/{m.id}/stock", data=data)
        assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "T100-BK-M 的库存已变动 -4。" in page
    db.session.expire_all()
    assert m.stock == 6
    entries = db.session.scalars(select(StockEntry).where(StockEntry.note == "破损")).all()
    assert [(e.delta, e.reason) for e in entries] == [(-4, "adjust")]
    r = client.post(
        f"/console/shop/skus/{m.id}/stock", data={**data, "delta": "-100", "request_key": "k2"}
    )
    assert "库存不足。" in client.get(r.headers["Location"]).get_data(as_text=True)
    r = client.post(
        f"/console/shop/products/{p.id}/on-sale",
        data={"csrf_token": factories.csrf(html), "on_sale": "0"},
    )
    assert r.status_code == 303
    db.session.expire_all()
    assert p.on_sale is False and m.stock == 6


def test_categories_page(client, brand):
    _admin(client, brand)
    html = client.get("/console/shop/categories").get_data(as_text=True)
    assert "还没有分类。" in html
    data = {
        "csrf_token": factories.csrf(html),
        "code": "tops",
        "name": "上衣",
        "sort": "3",
        "active": "y",
    }
    assert client.post("/console/shop/categories", data=data).status_code == 302
    r = client.post("/console/shop/categories", data=data)
    assert r.status_code == 400 and "该编码已被使用。" in r.get_data(as_text=True)
    cat = db.session.scalars(select(Category)).one()
    html = client.get(f"/console/shop/categories/{cat.id}").get_data(as_text=True)
    r = client.post(
        f"/console/shop/categories/{cat.id}",
        data={"csrf_token": factories.csrf(html), "code": "changed", "name": "上装", "sort": "1"},
    )
    assert r.status_code == 302
    db.session.expire_all()
    assert (cat.code, cat.name, cat.sort, cat.active) == ("tops", "上装", 1, False)


def test_flash_sale_pages(client, brand):
    p = product("T100")
    m = _skus(p)[0]
    _admin(client, brand)
    html = client.get("/console/shop/flash-sales/new").get_data(as_text=True)
    assert "新建秒杀" in html and "商品 T100 · 黑 / M (T100-BK-M)" in html
    local = (utcnow() + dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    fmt = "%Y-%m-%dT%H:%M"
    data = {
        "csrf_token": factories.csrf(html),
        "sku_id": str(m.id),
        "name": "T恤秒杀",
        "price": "49",
        "quantity": "11",
        "per_member_limit": "1",
        "starts_at": local.strftime(fmt),
        "ends_at": (local + dt.timedelta(hours=2)).strftime(fmt),
    }
    r = client.post("/console/shop/flash-sales/new", data=data)
    assert r.status_code == 400 and "该 SKU 仅有 10 件库存。" in r.get_data(as_text=True)
    r = client.post("/console/shop/flash-sales/new", data={**data, "quantity": "10"})
    assert r.status_code == 302
    fs = db.session.scalars(select(FlashSale)).one()
    assert (fs.price_fen, fs.quantity, fs.sku_id) == (4900, 10, m.id)
    assert abs((fs.starts_at - utcnow()) - dt.timedelta(hours=1)) < dt.timedelta(minutes=2)
    html = client.get("/console/shop/flash-sales").get_data(as_text=True)
    assert "T恤秒杀" in html and "未开始" in html and "0 / 10" in html
    r = client.post(
        f"/console/shop/flash-sales/{fs.id}/stop", data={"csrf_token": factories.csrf(html)}
    )
    assert r.status_code == 303
    assert "已停止" in client.get("/console/shop/flash-sales").get_data(as_text=True)


def test_import_page_lists_row_errors_and_offers_them_as_csv(client, brand):
    _admin(client, brand)
    html = client.get("/console/shop/import").get_data(as_text=True)
    assert "全部成功才导入" in html
    body = "商品编码,商品名称,SKU编码,价格\r\nP1,衬衫,P1-1,=1+1\r\nP2,裤子,P2-1,10\r\n"
    r = client.post(
        "/console/shop/import",
        data={
            "csrf_token": factories.csrf(html),
            "file": (io.BytesIO(body.encode("gbk")), "p.csv"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "未导入任何数据：2 行中有 1 处错误。" in page
    assert "<td>2</td><td>价格</td>" in page
    link = re.search(r'href="([^"]+errors\.csv)"', page).group(1)
    csv_text = client.get(link).get_data(as_text=True)
    assert "'=1+1" in csv_text
    assert db.session.scalars(select(Product)).all() == []
    good = "商品编码,商品名称,SKU编码,价格\r\nP2,裤子,P2-1,10\r\n"
    r = client.post(
        "/console/shop/import",
        data={"csrf_token": factories.csrf(html), "file": (io.BytesIO(good.encode()), "p.csv")},
        content_type="multipart/form-data",
    )
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已导入 1 行：新建商品 1 个" in page
    assert client.get("/console/shop/import/0123abc").status_code == 404


# --- member pages ----------------------------------------------------------------------------


def test_member_list_by_category_and_detail_with_the_cart_form(client, brand):
    tops = catalog.create_category(code="tops", name="上衣", sort=2)
    hidden = catalog.create_category(code="old", name="旧款", active=False)
    p = product("T100", name="圆领T恤", category_id=tops.id, limit_per_member=3, sort=9)
    product("B100", name="牛仔裤", skus=[sku("B100-1", original=15900, stock=0)])
    product("X100", name="下架的", on_sale=False)
    product("H100", name="隐藏分类的", category_id=hidden.id)
    db.session.commit()
    html = client.get(f"/m/{brand.slug}/shop").get_data(as_text=True)
    assert "商城" in html and "上衣" in html and "旧款" not in html
    assert html.index("圆领T恤") < html.index("牛仔裤")  # larger sort first
    assert "下架的" not in html and "隐藏分类的" not in html and "已售罄" in html
    html = client.get(f"/m/{brand.slug}/shop?category={tops.id}").get_data(as_text=True)
    assert "圆领T恤" in html and "牛仔裤" not in html
    assert client.get(f"/m/{brand.slug}/shop?category={10**30}").status_code == 200

    html = client.get(f"/m/{brand.slug}/shop/products/{p.id}").get_data(as_text=True)
    m, big = _skus(p)
    assert "圆领T恤" in html and "¥99.00" in html and "¥129.00" in html
    assert "每人限购 3 件" in html and "有货" in html
    form = re.search(r'<form method="post" action="([^"]+)" class="s-buy"', html)
    assert form.group(1) == f"/m/{brand.slug}/shop/cart"
    assert re.search(rf'name="sku_id" value="{m.id}"\s+checked', html)
    assert f'name="sku_id" value="{big.id}"' in html
    assert 'name="quantity" value="1" min="1" max="3"' in html
    assert 'name="buy_now" value="1"' in html and factories.csrf(html)
    for pid in (0, 10**30):
        assert client.get(f"/m/{brand.slug}/shop/products/{pid}").status_code == 404
    with use_brand(brand.id):
        hidden_id = db.session.scalars(select(Product.id).where(Product.code == "X100")).one()
    assert client.get(f"/m/{brand.slug}/shop/products/{hidden_id}").status_code == 404
    other = factories.brand()
    assert client.get(f"/m/{other.slug}/shop/products/{p.id}").status_code == 404


def test_member_detail_shows_a_running_flash_sale(client, brand):
    p = product("T100")
    m = _skus(p)[0]
    now = utcnow()
    catalog.create_flash_sale(
        sku_id=m.id, name="秒杀", price_fen=4900, quantity=5, per_member_limit=1,
        starts_at=now - dt.timedelta(minutes=1), ends_at=now + dt.timedelta(hours=2),
    )  # fmt: skip
    db.session.commit()
    html = client.get(f"/m/{brand.slug}/shop/products/{p.id}").get_data(as_text=True)
    assert "秒杀" in html and "¥49.00" in html and "距结束" in html
    assert 'data-ends="' + (now + dt.timedelta(hours=2)).isoformat()[:16] in html
    # The flash price is bought at once: no "add to cart" for the SKU on sale.
    assert re.search(r"data-add-cart[^>]*\shidden>", html)
    assert re.search(r'name="buy_now" value="1"[^>]*data-buy-now\s*>', html)
    listing = client.get(f"/m/{brand.slug}/shop").get_data(as_text=True)
    assert "¥49.00" in listing and "s-flash-tag" in listing


# --- mini-program API ------------------------------------------------------------------------


def test_mp_products_and_detail(client, brand, local_storage):  # noqa: F811
    from core import storage

    tops = catalog.create_category(code="tops", name="上衣")
    key = storage.save_image(png(), prefix=f"shop/b{brand.id}")
    p = product("T100", category_id=tops.id, images=[key], sort=5)
    for i in range(4):
        product(f"Q{i}", skus=[sku(f"Q{i}-1", stock=0 if i == 0 else 5)], commit=False)
    db.session.commit()
    base = f"/api/mp/{brand.slug}/products"
    r = client.get(base, query_string={"limit": 2})
    assert r.status_code == 200
    first = r.json
    assert [i["id"] for i in first["items"]][0] == p.id
    assert first["categories"] == [{"id": tops.id, "code": "tops", "name": "上衣"}]
    card = first["items"][0]
    assert card["cover_url"].startswith("http") and card["cover_url"].endswith(key)
    assert (card["price_fen"], card["original_price_fen"], card["in_stock"]) == (9900, 12900, True)
    seen = [i["id"] for i in first["items"]]
    after = first["next_after"]
    while after:
        page = client.get(base, query_string={"limit": 2, "after": after}).json
        seen += [i["id"] for i in page["items"]]
        after = page["next_after"]
    assert len(seen) == len(set(seen)) == 5
    r = client.get(base, query_string={"category_id": tops.id})
    assert [i["id"] for i in r.json["items"]] == [p.id]
    r = client.get(base, query_string={"limit": 0})
    assert r.status_code == 400 and r.json["error"]["field"] == "limit"

    r = client.get(f"{base}/{p.id}")
    assert r.status_code == 200
    d = r.json
    assert d["specs"] == {"颜色": ["黑"], "尺码": ["M", "L"]}
    assert [(s["code"], s["stock"], s["stock_state"], s["flash_sale"]) for s in d["skus"]] == [
        ("T100-BK-M", 10, "in_stock", None),
        ("T100-BK-L", 3, "low", None),
    ]
    assert d["image_urls"][0].endswith(key)
    assert client.get(f"{base}/999999").status_code == 404
    other = factories.brand()
    r = client.get(f"/api/mp/{other.slug}/products/{p.id}")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_openapi_lists_the_catalog(client):
    doc = client.get("/api/mp/openapi.json").json
    assert "get" in doc["paths"]["/api/mp/{brand_slug}/products"]
    detail = doc["paths"]["/api/mp/{brand_slug}/products/{product_id}"]["get"]
    assert detail["security"] == []
    ref = detail["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ProductOut")
    assert {"SkuOut", "ProductPage", "FlashSaleOut"} <= set(doc["components"]["schemas"])


def test_an_unreachable_image_store_is_a_form_error(app, client, brand):
    from core.storage import S3Storage

    _admin(client, brand)
    html = client.get("/console/shop/products/new").get_data(as_text=True)
    saved = app.extensions["storage"]
    app.extensions["storage"] = S3Storage(
        endpoint="http://127.0.0.1:9", bucket="b", access_key="a", secret_key="s", timeout=2
    )
    try:
        r = client.post(
            "/console/shop/products/new",
            data={
                "csrf_token": factories.csrf(html),
                "code": "T1",
                "name": "T恤",
                "category_id": "0",
                "limit_per_member": "0",
                "sort": "0",
                "sku_id": [""],
                "sku_code": ["T1-1"],
                "sku_price": ["9"],
                "new_images": [(io.BytesIO(png()), "a.png")],
            },
            content_type="multipart/form-data",
        )
    finally:
        app.extensions["storage"] = saved
    assert r.status_code == 400 and "图片暂时无法保存，请稍后再试。" in r.get_data(as_text=True)
    assert db.session.scalars(select(Product)).all() == []
