"""Fixtures of the shop's order tests: a brand with a store, a small catalog with stock,
shop settings, members with points and coupons, and a fake of WeChat Pay's gateway calls.

The catalog rows are written directly (the catalog's own services are another part's); the
stock goes through ``shop.stock.change`` like every stock change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import secrets
import types

import pytest

from core.db import db
from core.tenancy import use_brand
from coupons import issuance
from members.identities import attach_identity
from points import services as points
from shop import stock
from shop.models import Category, FlashSale, Product, ShopSettings, Sku
from tests import factories
from tests.support.wechat_sandbox import give_pay_settings

_seq = itertools.count(1)


def product(
    *,
    name: str = "乌龙茶",
    price_fen: int = 2000,
    stock_units: int = 100,
    category: Category | None = None,
    limit_per_member: int = 0,
    on_sale: bool = True,
) -> Sku:
    """A product on sale with one SKU of ``stock_units`` (committed)."""
    n = next(_seq)
    p = Product(
        code=f"P{n:04d}",
        name=name,
        category_id=category.id if category else None,
        on_sale=on_sale,
        limit_per_member=limit_per_member,
    )
    db.session.add(p)
    db.session.flush()
    sku = Sku(product_id=p.id, code=f"SKU{n:04d}", spec={"规格": "500g"}, price_fen=price_fen)
    db.session.add(sku)
    db.session.flush()
    if stock_units:
        stock.change(
            sku_id=sku.id, delta=stock_units, reason="import", idempotency_key=f"init:{sku.id}"
        )
    db.session.commit()
    return sku


def sandbox_merchant(brand):
    """The brand made a merchant of the WeChat Pay sandbox for this test alone (the sandbox's
    orders, controls and trade bill are per merchant), with a store and shop settings;
    answers (mch_id, store). The caller works inside ``use_brand(brand.id)`` afterwards."""
    mch_id = "19" + "".join(secrets.choice("0123456789") for _ in range(8))
    give_pay_settings(brand, mch_id=mch_id)
    db.session.commit()
    with use_brand(brand.id):
        store = factories.store(brand)
        db.session.add(
            ShopSettings(
                points_per_yuan=100,
                max_points_percent=50,
                pay_timeout_minutes=15,
                shipping_fee_fen=800,
                free_shipping_fen=10000,
            )
        )
        db.session.commit()
    return mch_id, store


def member(*, points_balance: int = 0, store=None, openids: bool = True):
    """An activated member with ``points_balance`` points and WeChat identities."""
    m = factories.member(
        activated=True, store=store, openid=f"oa-{next(_seq)}" if openids else None
    )
    if openids:
        attach_identity(member_id=m.id, kind="mp_openid", value=f"mp-{m.id}")
    if points_balance:
        points.adjust(
            member_id=m.id,
            points=points_balance,
            reason="test grant",
            idempotency_key=f"grant:{m.id}",
        )
    db.session.commit()
    return m


def coupon(member_id: int, **template):
    """A coupon of a new template (5 yuan off by default) held by the member."""
    tpl = factories.coupon_template(**template)
    c = issuance.issue(
        template_id=tpl.id, member_id=member_id, source="console", idempotency_key=f"c:{next(_seq)}"
    )
    db.session.commit()
    return c


def flash_sale(sku: Sku, *, quantity: int, price_fen: int = 990, per_member_limit: int = 1):
    now = dt.datetime.now(dt.UTC)
    sale = FlashSale(
        sku_id=sku.id,
        name="秒杀",
        price_fen=price_fen,
        quantity=quantity,
        per_member_limit=per_member_limit,
        starts_at=now - dt.timedelta(minutes=1),
        ends_at=now + dt.timedelta(hours=1),
    )
    db.session.add(sale)
    db.session.commit()
    return sale


@dataclasses.dataclass
class Shop:
    brand: object
    store: object
    tea: Category
    sku: Sku
    other_sku: Sku
    settings: ShopSettings


@pytest.fixture
def shop(brand):
    store = factories.store(brand)
    tea = Category(code="tea", name="茶")
    db.session.add(tea)
    settings = ShopSettings(
        points_per_yuan=100,
        max_points_percent=50,
        pay_timeout_minutes=15,
        shipping_fee_fen=800,
        free_shipping_fen=10000,
        shipping_by_region={"新疆": 2000},
    )
    db.session.add(settings)
    db.session.commit()
    sku = product(name="乌龙茶", price_fen=2000, category=tea)
    other = product(name="茶杯", price_fen=3000)
    return Shop(brand, store, tea, sku, other, settings)


ADDRESS = {
    "name": "张三",
    "phone": "+86 138-0013-8000",
    "province": "上海",
    "city": "上海",
    "district": "徐汇区",
    "detail": "漕溪北路 1 号",
}


class FakePay:
    """What the shop asks of WeChat Pay, recorded; ``paid`` holds what WeChat "took"."""

    def __init__(self):
        self.prepays: list[dict] = []
        self.closed: list[str] = []
        self.paid: dict[str, tuple[str, int]] = {}  # out_trade_no -> (transaction_id, fen)
        self.notices: list = []
        self.refuse_close: set[str] = set()

    def pay_jsapi_prepay(self, brand_id, **kw):
        self.prepays.append(kw)
        return {"package": f"prepay_id=wx{len(self.prepays)}", "paySign": "sig"}

    def pay_query(self, brand_id, out_trade_no):
        if out_trade_no in self.paid:
            txn, fen = self.paid[out_trade_no]
            return types.SimpleNamespace(
                trade_state="SUCCESS", transaction_id=txn, amount_total=fen, success_time=None
            )
        return types.SimpleNamespace(
            trade_state="NOTPAY", transaction_id=None, amount_total=0, success_time=None
        )

    def pay_close(self, brand_id, out_trade_no):
        if out_trade_no in self.refuse_close:
            raise RuntimeError("ORDERPAID")
        self.closed.append(out_trade_no)

    def pay_notify_answer(self, ok, message=""):
        if ok:
            return "", 204
        return {"code": "FAIL", "message": message}, 400

    class PayNotifyError(Exception):
        def __init__(self, reason):
            super().__init__(reason)
            self.reason = reason

    def pay_parse_notify(self, brand_id, headers, body):
        if headers.get("Wechatpay-Signature") != "good":
            raise self.PayNotifyError("signature")
        import json

        data = json.loads(body)
        return types.SimpleNamespace(kind="transaction", success_time=None, **data)


@pytest.fixture
def fake_pay(monkeypatch):
    from wechat import gateway

    fake = FakePay()
    for name in (
        "pay_jsapi_prepay",
        "pay_query",
        "pay_close",
        "pay_notify_answer",
        "pay_parse_notify",
        "PayNotifyError",
    ):
        monkeypatch.setattr(gateway, name, getattr(fake, name), raising=False)
    return fake


from tests.shop.pay_world import paid_signals, world  # noqa: E402, F401 - fixtures
