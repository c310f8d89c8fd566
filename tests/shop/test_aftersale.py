"""After-sale requests: per line, up to what is left, one open request per line, within the
return window; approve (refund or wait for the goods), refuse with a reason, cancel."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.db import db
from core.errors import Conflict, NotFound, ValidationError
from shop import aftersale, fulfilment, refunds
from shop.models import (
    AS_APPROVED,
    AS_CANCELLED,
    AS_REFUNDED,
    AS_REFUNDING,
    AS_REFUSED,
    TILL,
    AfterSale,
    OrderLine,
    Sku,
)
from tests import factories
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures


def _lines(order) -> list[OrderLine]:
    return list(
        db.session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
    )


def _req(ident) -> AfterSale:
    return db.session.execute(
        select(AfterSale).where(AfterSale.id == ident).execution_options(populate_existing=True)
    ).scalar_one()


def test_refund_only_request_approved_is_refunded(brand, store, skus, member_id, fake_pay):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 2)], store_id=store.id)
    line = _lines(order)[0]
    req = aftersale.request(
        order_id=order.id, member_id=member_id, kind="refund_only",
        items=[refunds.Item(line.id, 1)], reason="不想要了",
    )  # fmt: skip
    db.session.commit()
    assert req.request_no == f"{order.order_no}A1"
    assert req.amount_fen == line.pay_fen // 2
    aftersale.approve(after_sale_id=req.id, operator="admin")
    db.session.commit()
    assert _req(req.id).status == AS_REFUNDING
    from shop.models import Refund

    r = db.session.scalars(select(Refund).where(Refund.after_sale_id == req.id)).one()
    refunds.submit(refund_id=r.id)
    db.session.commit()
    assert _req(req.id).status == AS_REFUNDED
    assert r.amount_fen == req.amount_fen


def test_return_waits_for_the_goods_then_restocks(brand, store, skus, member_id, fake_pay):
    order = sf.paid_order(member_id=member_id, lines=[(skus[1], 3)], store_id=store.id)
    fulfilment.ship(order_id=order.id, carrier="EMS", tracking_no="E1")
    line = _lines(order)[0]
    req = aftersale.request(
        order_id=order.id, member_id=member_id, kind="return_refund",
        items=[refunds.Item(line.id, 2)], reason="尺码不合适",
    )  # fmt: skip
    aftersale.approve(after_sale_id=req.id, operator="admin")
    db.session.commit()
    assert _req(req.id).status == AS_APPROVED
    assert fake_pay.calls == []
    aftersale.set_return_tracking(after_sale_id=req.id, member_id=member_id, tracking_no="YT9")
    stock_before = db.session.get(Sku, skus[1].id).stock
    aftersale.receive_return(after_sale_id=req.id, operator="admin")
    db.session.commit()
    from shop.models import Refund

    r = db.session.scalars(select(Refund).where(Refund.after_sale_id == req.id)).one()
    refunds.submit(refund_id=r.id)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Sku, skus[1].id).stock == stock_before + 2
    assert _req(req.id).status == AS_REFUNDED
    assert _req(req.id).return_tracking_no == "YT9"


def test_one_open_request_per_line_and_refuse_with_reason(brand, store, skus, member_id):
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 2), (skus[1], 1)], store_id=store.id
    )
    a, b = _lines(order)
    req = aftersale.request(
        order_id=order.id, member_id=member_id, kind="refund_only",
        items=[refunds.Item(a.id, 1)], reason="质量问题",
    )  # fmt: skip
    with pytest.raises(Conflict) as err:
        aftersale.request(
            order_id=order.id, member_id=member_id, kind="refund_only",
            items=[refunds.Item(a.id, 1)], reason="again",
        )  # fmt: skip
    assert err.value.field == "lines.0"
    # another line is fine
    aftersale.request(
        order_id=order.id, member_id=member_id, kind="refund_only",
        items=[refunds.Item(b.id, 1)], reason="b",
    )  # fmt: skip
    with pytest.raises(ValidationError):
        aftersale.refuse(after_sale_id=req.id, reason="  ")
    aftersale.refuse(after_sale_id=req.id, reason="商品无质量问题", operator="admin")
    db.session.commit()
    r = _req(req.id)
    assert r.status == AS_REFUSED and r.refuse_reason == "商品无质量问题"
    with pytest.raises(aftersale.AfterSaleClosed):
        aftersale.approve(after_sale_id=req.id)
    # refused: the line is free again
    again = aftersale.request(
        order_id=order.id, member_id=member_id, kind="refund_only",
        items=[refunds.Item(a.id, 1)], reason="again",
    )  # fmt: skip
    aftersale.cancel(after_sale_id=again.id, member_id=member_id)
    assert _req(again.id).status == AS_CANCELLED


def test_requests_are_limited_to_the_member_the_window_and_online_orders(
    brand, store, skus, member_id
):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    line = _lines(order)[0]
    stranger = factories.member().id
    with pytest.raises(NotFound):
        aftersale.request(
            order_id=order.id, member_id=stranger, kind="refund_only",
            items=[refunds.Item(line.id, 1)], reason="x",
        )  # fmt: skip
    with pytest.raises(ValidationError) as err:
        aftersale.request(
            order_id=order.id, member_id=member_id, kind="refund_only",
            items=[refunds.Item(line.id, 2)], reason="x",
        )  # fmt: skip
    assert err.value.field == "lines.0.quantity"
    with pytest.raises(ValidationError) as err:
        aftersale.request(
            order_id=order.id, member_id=member_id, kind="return_refund",
            items=[refunds.Item(line.id, 0, 100)], reason="x",
        )  # fmt: skip
    assert err.value.field == "lines.0.quantity"
    # completed: open for return_window_days, then closed
    t0 = dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC)
    fulfilment.ship(order_id=order.id, carrier="EMS", tracking_no="E1", now=t0)
    fulfilment.confirm_receipt(order_id=order.id, member_id=member_id, now=t0)
    fulfilment.complete(order_id=order.id, now=t0)
    days = fulfilment.get_settings().return_window_days
    ok = aftersale.request(
        order_id=order.id, member_id=member_id, kind="refund_only",
        items=[refunds.Item(line.id, 1)], reason="x", now=t0 + dt.timedelta(days=days - 1),
    )  # fmt: skip
    aftersale.cancel(after_sale_id=ok.id, member_id=member_id)
    with pytest.raises(Conflict):
        aftersale.request(
            order_id=order.id, member_id=member_id, kind="refund_only",
            items=[refunds.Item(line.id, 1)], reason="x", now=t0 + dt.timedelta(days=days + 1),
        )  # fmt: skip
    till = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 1)], store_id=store.id, channel=TILL,
        fulfilment="in_store",
    )  # fmt: skip
    with pytest.raises(Conflict):
        aftersale.request(
            order_id=till.id, member_id=member_id, kind="refund_only",
            items=[refunds.Item(_lines(till)[0].id, 1)], reason="x",
        )  # fmt: skip
