"""Catalog services: validation with Chinese messages on the right field, tenancy, SKU rows,
stock adjustments through the ledger (also under concurrency) and flash-sale rules."""

from __future__ import annotations

import datetime as dt

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from core.audit import Actor, AuditLog, acting_as
from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from core.tenancy import use_brand
from shop import catalog
from shop.models import FlashSale, Product, Sku, StockEntry
from shop.stock import OutOfStock
from tests import factories
from tests.shop.catalog_helpers import product, sku
from tests.support.concurrency import run_concurrently


def _error(fn, **kw) -> ValidationError:
    with force_locale("zh"), pytest.raises(ValidationError) as info:
        fn(**kw)
    db.session.rollback()
    return info.value


def _skus(p) -> list[Sku]:
    return list(db.session.scalars(select(Sku).where(Sku.product_id == p.id).order_by(Sku.id)))


def test_product_with_skus_and_opening_stock_in_the_ledger(brand):
    cat = catalog.create_category(code="tops", name="上衣")
    p = product("T100", category_id=cat.id)
    skus = _skus(p)
    assert [(s.code, s.spec, s.stock) for s in skus] == [
        ("T100-BK-M", {"颜色": "黑", "尺码": "M"}, 10),
        ("T100-BK-L", {"颜色": "黑", "尺码": "L"}, 3),
    ]
    entries = db.session.execute(
        select(
            StockEntry.sku_id, StockEntry.delta, StockEntry.reason, StockEntry.idempotency_key
        ).order_by(StockEntry.id)
    ).all()
    assert entries == [
        (skus[0].id, 10, "adjust", f"sku:{skus[0].id}:opening"),
        (skus[1].id, 3, "adjust", f"sku:{skus[1].id}:opening"),
    ]
    assert catalog.spec_text(skus[0].spec) == "黑 / M"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"code": "has space"}, "code", "只能使用字母、数字、点、短横线和下划线（最多 60 个）。"),
        ({"name": "  "}, "name", "此项必填。"),
        ({"limit_per_member": -1}, "limit_per_member", "请输入 0 到 999 之间的整数。"),
        ({"skus": []}, "skus", "请至少添加一个 SKU。"),
        ({"skus": [sku("A", price=0)]}, "skus.0.price_fen", "请输入 1 到 1000000000 之间的整数。"),
        ({"skus": [sku("A", price=100, original=100)]}, "skus.0.original_price_fen",
         "划线价须高于售价（不设请填 0）。"),
        ({"skus": [sku("A", spec="颜色黑")]}, "skus.0.spec",
         "规格请写成 名称:值;名称:值，如 颜色:黑;尺码:M。"),
        ({"skus": [sku("A", spec="颜色:黑;颜色:白")]}, "skus.0.spec", "规格中“颜色”出现了两次。"),
        ({"skus": [sku("A", spec="颜色:黑"), sku("A", spec="颜色:白")]}, "skus.1.code",
         "有两个 SKU 的编码都是 A。"),
        ({"skus": [sku("A", spec="颜色:黑"), sku("B", spec="颜色：黑")]}, "skus.1.spec",
         "有两个 SKU 的规格相同。"),
        ({"skus": [sku("A", stock=-5)]}, "skus.0.stock", "请输入 0 到 10000000 之间的整数。"),
        ({"images": ["../../etc/passwd"]}, "images", "文件不是 JPEG、PNG、WebP 或 GIF 图片。"),
    ],
)  # fmt: skip
def test_bad_product_input_is_refused_on_its_field(brand, change, field, message):
    values = dict(
        code="P1", name="T恤", category_id=None, subtitle="", description="", images=[],
        on_sale=True, limit_per_member=0, promotion=False, sort=0, skus=[sku("P1-A")],
    )  # fmt: skip
    values.update(change)
    err = _error(catalog.create_product, **values)
    assert (err.field, err.message) == (field, message)
    assert db.session.scalar(select(func.count()).select_from(Product)) == 0
    assert db.session.scalar(select(func.count()).select_from(Sku)) == 0


def test_codes_are_unique_per_brand_not_across_brands(brand):
    product("P1")
    err = _error(
        catalog.create_product,
        code="P2", name="x", category_id=None, subtitle="", description="", images=[],
        on_sale=False, limit_per_member=0, promotion=False, sort=0, skus=[sku("P1-BK-M")],
    )  # fmt: skip
    assert (err.field, err.message) == ("skus.0.code", "SKU 编码 P1-BK-M 已被使用。")
    err = _error(
        catalog.create_product,
        code="P1", name="x", category_id=None, subtitle="", description="", images=[],
        on_sale=False, limit_per_member=0, promotion=False, sort=0, skus=[sku("NEW")],
    )  # fmt: skip
    assert (err.field, err.message) == ("code", "该编码已被使用。")
    other = factories.brand()
    with use_brand(other.id):
        product("P1")  # the same codes in another brand are fine
        assert db.session.scalar(select(func.count()).select_from(Product)) == 1


def test_another_brands_objects_are_not_found(brand):
    p = product("P1")
    cat = catalog.create_category(code="c", name="分类")
    db.session.commit()
    sku_id = _skus(p)[0].id
    other = factories.brand()
    with use_brand(other.id):
        with pytest.raises(NotFound):
            catalog.get_product(p.id)
        with pytest.raises(NotFound):
            catalog.adjust_stock(
                sku_id=sku_id, delta=5, note="x", operator="o", idempotency_key="k1"
            )
        with pytest.raises(NotFound):
            catalog.set_on_sale(product_id=p.id, on_sale=False)
        # a product of this brand cannot take the other brand's category
        with pytest.raises(NotFound) as info:
            product("Q1", category_id=cat.id)
        assert info.value.field == "category_id"
        db.session.rollback()
    db.session.expire_all()
    assert _skus(p)[0].stock == 10 and p.on_sale is True


def test_update_changes_skus_adds_new_ones_and_retires_the_missing(brand):
    p = product("P1")
    m, big = _skus(p)
    catalog.update_product(
        product_id=p.id,
        code="P1",
        name="新名字",
        category_id=None,
        subtitle="副标题",
        description="",
        images=[],
        on_sale=True,
        limit_per_member=2,
        promotion=True,
        sort=5,
        skus=[
            {"id": m.id, "code": "P1-BK-M", "spec": "颜色:黑;尺码:M", "price_fen": 8900,
             "original_price_fen": 0, "stock": 999},
            sku("P1-WH-M", spec="颜色:白;尺码:M", stock=7),
        ],
        operator="test",
    )  # fmt: skip
    db.session.commit()
    db.session.expire_all()
    rows = {s.code: (s.price_fen, s.stock, s.active) for s in _skus(p)}
    # The stock of an existing SKU is not set by the form (only adjust_stock moves it).
    assert rows == {
        "P1-BK-M": (8900, 10, True),
        "P1-BK-L": (9900, 3, False),
        "P1-WH-M": (9900, 7, True),
    }
    assert (p.name, p.limit_per_member, p.promotion, p.sort) == ("新名字", 2, True, 5)


def test_stock_adjustment_is_ledgered_audited_and_once_per_key(brand):
    p = product("P1")
    s = _skus(p)[1]
    with acting_as(Actor("staff", 7, "店长小王")):
        assert catalog.adjust_stock(
            sku_id=s.id, delta=20, note="盘点", operator="店长小王", idempotency_key="k1"
        )
        assert not catalog.adjust_stock(
            sku_id=s.id, delta=20, note="盘点", operator="店长小王", idempotency_key="k1"
        )
        db.session.commit()
        with pytest.raises(OutOfStock):
            catalog.adjust_stock(
                sku_id=s.id, delta=-24, note="破损", operator="店长小王", idempotency_key="k2"
            )
        db.session.rollback()
    db.session.expire_all()
    assert s.stock == 23
    entry = db.session.scalars(
        select(StockEntry).where(StockEntry.idempotency_key == "adjust:k1")
    ).one()
    assert (entry.delta, entry.reason, entry.operator, entry.note) == (
        20,
        "adjust",
        "店长小王",
        "盘点",
    )
    k2 = select(func.count()).where(StockEntry.idempotency_key == "adjust:k2")
    assert db.session.scalar(k2) == 0
    logs = db.session.scalars(select(AuditLog).where(AuditLog.action == "stock_adjust")).all()
    assert [(a.actor_label, a.object_id, a.after["delta"]) for a in logs] == [
        ("店长小王", str(s.id), 20)
    ]
    err = _error(
        catalog.adjust_stock, sku_id=s.id, delta=0, note="x", operator="o", idempotency_key="k3"
    )
    assert (err.field, err.message) == ("delta", "数量须为非零整数。")
    err = _error(
        catalog.adjust_stock, sku_id=s.id, delta=1, note=" ", operator="o", idempotency_key="k3"
    )
    assert err.field == "note"


def test_concurrent_adjustments_add_up_exactly_and_never_go_negative(app, brand):
    p = product("P1", skus=[sku("P1-A", stock=50)])
    sku_id = _skus(p)[0].id
    n = 40

    def adjust(i: int):
        # 20 operators take 5 each, 20 add 2 each, all at once: 50 - 100 + 40 could go
        # negative; some takes must fail instead.
        delta = -5 if i % 2 == 0 else 2
        return catalog.adjust_stock(
            sku_id=sku_id, delta=delta, note="并发", operator=f"op{i}", idempotency_key=f"c{i}"
        )

    results = run_concurrently(app, brand.id, n, adjust)
    took = sum(1 for i, r in enumerate(results) if r == ("ok", True) and i % 2 == 0)
    added = sum(1 for i, r in enumerate(results) if r == ("ok", True) and i % 2 == 1)
    failed = [r for r in results if r[0] == "error"]
    assert all(r == ("error", "OutOfStock") for r in failed)
    assert added == 20 and took + len(failed) == 20
    db.session.expire_all()
    stock = db.session.get(Sku, sku_id).stock
    assert stock == 50 - 5 * took + 2 * added >= 0
    ledger = db.session.scalar(
        select(func.sum(StockEntry.delta)).where(StockEntry.sku_id == sku_id)
    )
    assert ledger == stock


def _flash(sku_id: int, **kw):
    now = utcnow()
    values = dict(
        sku_id=sku_id,
        name="秒杀",
        price_fen=4900,
        quantity=5,
        per_member_limit=1,
        starts_at=now + dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=3),
    )
    values.update(kw)
    return values


def test_flash_sale_rules(brand):
    p = product("P1")
    m = _skus(p)[0]  # price 99.00, stock 10
    now = utcnow()
    cases = [
        (dict(quantity=11), "quantity", "该 SKU 仅有 10 件库存。"),
        (dict(price_fen=9900), "price_fen", "秒杀价须低于该 SKU 的售价。"),
        (dict(per_member_limit=0), "per_member_limit", "请输入 1 到 999 之间的整数。"),
        (dict(ends_at=now - dt.timedelta(minutes=1), starts_at=now - dt.timedelta(hours=1)),
         "ends_at", "结束时间必须晚于现在。"),
        (dict(ends_at=now + dt.timedelta(minutes=30)), "ends_at", "结束时间必须晚于开始时间。"),
        (dict(ends_at=now + dt.timedelta(days=40)), "ends_at", "秒杀活动最长 31 天。"),
    ]  # fmt: skip
    for change, field, message in cases:
        err = _error(catalog.create_flash_sale, **_flash(m.id, **change))
        assert (err.field, err.message) == (field, message), change
    running = catalog.create_flash_sale(
        **_flash(m.id, starts_at=now - dt.timedelta(minutes=5), quantity=10)
    )
    db.session.commit()
    err = _error(catalog.create_flash_sale, **_flash(m.id))
    assert (err.field, err.message) == ("starts_at", "该 SKU 在这段时间已有秒杀活动。")
    # running: the price is fixed, the end may move
    err = _error(
        catalog.update_flash_sale,
        flash_sale_id=running.id,
        **{k: v for k, v in _flash(m.id, price_fen=3900).items() if k != "sku_id"},
    )
    assert err.message == "进行中的秒杀活动只能修改名称和结束时间。"
    fs = db.session.get(FlashSale, running.id)
    catalog.update_flash_sale(
        flash_sale_id=fs.id, name="延长", price_fen=fs.price_fen, quantity=fs.quantity,
        per_member_limit=fs.per_member_limit, starts_at=fs.starts_at,
        ends_at=fs.ends_at + dt.timedelta(hours=1),
    )  # fmt: skip
    catalog.stop_flash_sale(flash_sale_id=fs.id)
    db.session.commit()
    # stopped: the SKU is free for another one
    later = catalog.create_flash_sale(**_flash(m.id))
    db.session.commit()
    assert (fs.name, fs.active, later.active) == ("延长", False, True)
    other = factories.brand()
    with use_brand(other.id), pytest.raises(NotFound):
        catalog.create_flash_sale(**_flash(m.id))


def test_on_sale_needs_an_active_sku(brand):
    p = product("P1", on_sale=False)
    catalog.update_product(
        product_id=p.id, code="P1", name="x", category_id=None, subtitle="", description="",
        images=[], on_sale=False, limit_per_member=0, promotion=False, sort=0,
        skus=[{**sku("P1-X"), "active": False}],
    )  # fmt: skip
    db.session.commit()
    err = _error(catalog.set_on_sale, product_id=p.id, on_sale=True)
    assert (err.field, err.message) == ("on_sale", "请至少添加一个 SKU。")
