"""The world of the shop's tests through WeChat Pay APIv3's sandbox: a merchant of the test
alone, a member with both openids and points, a product, the notify address of the live app;
orders placed and attempts started as the member would, and what the tests count.
"""

from __future__ import annotations

import secrets
import threading

import pytest
from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from members.identities import attach_identity
from members.models import MemberActivity
from points import services as points
from points.models import PointsEntry
from shop import checkout, payments, signals
from shop.models import H5, PAY_PAID, Order, Payment, PayNotifyLog
from shop.pricing import Item
from tests import factories
from tests.shop.conftest import ADDRESS, product, sandbox_merchant
from wechat.sandbox import paystore


class World:
    def __init__(self, brand, mch_id, member, sku, notify_url, app):
        self.brand, self.mch_id, self.member, self.sku = brand, mch_id, member, sku
        self.notify_url, self.app = notify_url, app


def place(w: World, *, quantity=2, **kw) -> Order:
    placed = checkout.checkout(
        member_id=w.member.id,
        items=[Item(w.sku.id, quantity)],
        channel=H5,
        idempotency_key=secrets.token_hex(6),
        address=ADDRESS,
        from_cart=False,
        **kw,
    )
    db.session.commit()
    return placed.order


def start_attempt(w: World, order: Order, *, mini_program=False) -> tuple[Payment, dict]:
    """A pay attempt of the member's order: the official account's pages' or the
    mini-program's (committed)."""
    payment, params = payments.start_payment(
        order_no=order.order_no,
        member_id=w.member.id,
        mini_program=mini_program,
        notify_url=w.notify_url,
    )
    db.session.commit()
    return payment, params


def control(w: World, **kw) -> None:
    if kw.get("mode"):
        paystore.set_delivery(
            w.mch_id,
            kw["mode"],
            out_trade_no=kw.get("out_trade_no"),
            delay=0,
            amount=kw.get("amount"),
        )


def fresh():
    db.session.rollback()
    db.session.expire_all()


def counts(w: World, order: Order) -> dict:
    fresh()
    return {
        "status": db.session.get(Order, order.id).status,
        "paid_payments": db.session.scalar(
            select(func.count()).where(Payment.order_id == order.id, Payment.status == PAY_PAID)
        ),
        "earned": db.session.scalar(
            select(func.count()).where(
                PointsEntry.member_id == w.member.id,
                PointsEntry.idempotency_key == f"shop:{order.order_no}:earn",
            )
        ),
        "purchases": db.session.scalar(
            select(func.count()).where(
                MemberActivity.member_id == w.member.id, MemberActivity.kind == "purchase"
            )
        ),
    }


def points_now(w: World) -> int:
    """The member's points, available and pending (earned points wait a few days)."""
    b = points.balance(w.member.id)
    return b.balance + b.pending


def outcomes(order: Order) -> list[str]:
    fresh()
    return sorted(
        db.session.scalars(
            select(PayNotifyLog.outcome).where(PayNotifyLog.out_trade_no.like(order.order_no + "%"))
        )
    )


@pytest.fixture
def world(wx_app, wx_brand, wx_consumer):
    # A merchant of this test alone: the sandbox's orders, controls and trade bill are
    # per merchant.
    mch_id, store = sandbox_merchant(wx_brand)
    with use_brand(wx_brand.id):
        sku = product(name="乌龙茶", price_fen=2000)
        m = factories.member(activated=True, store=store, openid=wx_consumer["openid"])
        attach_identity(member_id=m.id, kind="mp_openid", value=wx_consumer["mp_openid"])
        points.adjust(member_id=m.id, points=1000, reason="grant", idempotency_key=f"g:{m.id}")
        db.session.commit()
        url = f"{wx_app.config['PUBLIC_URL']}/pay/notify/{wx_brand.slug}"
        yield World(wx_brand, mch_id, m, sku, url, wx_app)
    paystore.clear_controls(mch_id)
    paystore.hold_refunds(mch_id, False)


@pytest.fixture
def paid_signals():
    got, lock = [], threading.Lock()

    def on_paid(sender, **kw):
        with lock:
            got.append(kw["order_id"])

    signals.order_paid.connect(on_paid)
    yield got
    signals.order_paid.disconnect(on_paid)
