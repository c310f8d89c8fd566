"""The shop's payments and refunds through WeChat Pay APIv3's sandbox, end to end: the real
gateway signs and verifies, the sandbox pays and posts its notifies to the live app.

- a payment notify delivered five times (one before the page's own query, four at once):
  one payment, one points award, one purchase, one ``order_paid``;
- forged notifies (bad signature, another merchant, another app, wrong amount, unknown
  order, replayed) refused with nothing changed;
- a refund whose notify comes late and twice: one effect;
- the active query finds a payment whose notify never came;
- the reconciliation job with the sandbox's trade bill;
- the member's pay page: the parameters it gets are what the sandbox's pay shim pays with.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import zoneinfo

import pytest
import requests
from sqlalchemy import func, select, text

from core.db import db
from core.tenancy import use_brand
from members.models import MemberActivity
from points import services as points
from points.models import PointsEntry
from shop import jobs, payments, reconcile, refunds
from shop.models import (
    CREATED,
    PAID,
    PAY_PENDING,
    RF_PROCESSING,
    RF_SUCCESS,
    Order,
    OrderLine,
    Payment,
    PayNotifyLog,
    ReconciliationIssue,
    ShopSettings,
)
from tests import factories
from tests.shop.conftest import ADDRESS, coupon, product
from tests.shop.pay_world import (
    World,
    control,
    counts,
    fresh,
    outcomes,
    place,
    points_now,
    start_attempt,
)
from tests.support.mini_program import activate, api, bearer
from tests.support.wechat_sandbox import WX_APIV3_KEY, give_pay_settings
from wechat import gateway
from wechat.sandbox import paynotify, paystore

CHINA = zoneinfo.ZoneInfo("Asia/Shanghai")


# --- one payment however often it is learned ---------------------------------------------------


def test_a_notify_delivered_five_times_pays_the_order_once(world, paid_signals, sandbox_url):
    w = world
    order = place(w)
    payment, _ = start_attempt(w, order)
    balance_before = points_now(w)

    # The phone pays: the sandbox posts the notify now, before the page's own query.
    paid = paynotify.pay_order(w.mch_id, payment.out_trade_no)
    assert [n["status"] for n in paid["notifies"]] == [204]
    refreshed = payments.refresh(order_no=order.order_no, member_id=w.member.id)
    db.session.commit()
    assert refreshed.status == PAID

    # WeChat's retries, four of them at once.
    def redeliver():
        with w.app.app_context():
            results.extend(paynotify.redeliver(w.mch_id, payment.out_trade_no))

    results: list[dict] = []
    threads = [threading.Thread(target=redeliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [r["status"] for r in results] == [204] * 4  # acknowledged: WeChat stops retrying

    got = counts(w, order)
    assert got == {"status": PAID, "paid_payments": 1, "earned": 1, "purchases": 1}
    assert paid_signals.count(order.id) == 1
    assert outcomes(order) == ["applied"] + ["duplicate"] * 4
    row = db.session.get(Order, order.id)
    assert row.paid_fen == 4800 and row.points_earned > 0
    assert db.session.get(Payment, payment.id).transaction_id == paid["order"]["transaction_id"]
    assert points_now(w) == balance_before + row.points_earned


def test_concurrent_first_notifies_and_query_apply_once(world, paid_signals):
    w = world
    order = place(w)
    payment, _ = start_attempt(w, order)
    control(w, mode="never")
    paynotify.pay_order(w.mch_id, payment.out_trade_no)  # paid, nothing posted yet
    results: list[dict] = []
    barrier = threading.Barrier(5)

    def redeliver():
        with w.app.app_context():
            barrier.wait()
            results.extend(paynotify.redeliver(w.mch_id, payment.out_trade_no))

    def query():
        with w.app.app_context(), use_brand(w.brand.id):
            barrier.wait()
            try:
                payments.refresh(order_no=order.order_no, member_id=w.member.id)
                db.session.commit()
            except Exception:  # the loser of the race may be refused; the test counts effects
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=redeliver) for _ in range(4)]
    threads.append(threading.Thread(target=query))
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 4 and all(r["status"] in (204, 503) for r in results)
    assert counts(w, order) == {"status": PAID, "paid_payments": 1, "earned": 1, "purchases": 1}
    assert paid_signals.count(order.id) == 1


# --- forged notifies -------------------------------------------------------------------------


def _unpaid_order_paid_there(w: World):
    """An order waiting for payment here whose trade the sandbox has as paid (its notify
    not sent): what a forger would imitate."""
    order = place(w)
    payment, _ = start_attempt(w, order)
    control(w, mode="never", out_trade_no=payment.out_trade_no)
    sandbox_order = paynotify.pay_order(w.mch_id, payment.out_trade_no)["order"]
    return order, payment, sandbox_order


def _post(w: World, resource: dict, *, key=WX_APIV3_KEY, headers=None, body=None):
    body = body or paynotify.build_notify(key, resource, kind="transaction")
    return requests.post(
        w.notify_url,
        data=body.encode(),
        headers={**(headers or paystore.signed_headers(body)), "Content-Type": "application/json"},
        timeout=10,
    )


def _forgeries(w: World, order: Order, sandbox_order: dict) -> dict:
    genuine = paynotify.transaction_resource(sandbox_order)
    body = paynotify.build_notify(WX_APIV3_KEY, genuine, kind="transaction")
    tampered = body.replace('"id": "', '"id": "x', 1)
    stale = paystore.signed_headers(body, timestamp=int(dt.datetime.now().timestamp()) - 3600)
    return {
        "bad signature": dict(headers=paystore.signed_headers(body), body=tampered),
        "another merchant": dict(resource={**genuine, "mchid": "1999999999"}),
        "another app": dict(resource={**genuine, "appid": "wxnotours00000001"}),
        "wrong amount": dict(
            resource={**genuine, "amount": {**genuine["amount"], "total": order.pay_fen - 1}}
        ),
        "unknown order": dict(resource={**genuine, "out_trade_no": "20990101000000000P1"}),
        "another key": dict(resource=genuine, key="0" * 32),
        "replayed an hour later": dict(headers=stale, body=body),
    }


def test_forged_notifies_are_refused_and_change_nothing(world, paid_signals):
    w = world
    order, payment, sandbox_order = _unpaid_order_paid_there(w)
    before = points.balance(w.member.id).balance
    for name, forged in _forgeries(w, order, sandbox_order).items():
        r = _post(w, forged.get("resource"), **{k: v for k, v in forged.items() if k != "resource"})
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        assert json.loads(r.text)["code"] == "FAIL", name
        assert counts(w, order) == {
            "status": CREATED,
            "paid_payments": 0,
            "earned": 0,
            "purchases": 0,
        }, name
    assert paid_signals == []
    assert points.balance(w.member.id).balance == before
    assert db.session.get(Payment, payment.id).status == PAY_PENDING
    logged = db.session.scalars(
        select(PayNotifyLog.outcome).where(PayNotifyLog.brand_id == w.brand.id)
    ).all()
    assert len(logged) == 7 and all(o.startswith("refused:") for o in logged)
    assert "refused:amount" in logged and "refused:unknown_order" in logged

    # The genuine notify still pays the order, once.
    (answer,) = paynotify.redeliver(w.mch_id, payment.out_trade_no)
    assert answer["status"] == 204
    assert counts(w, order)["status"] == PAID and paid_signals == [order.id]


def test_a_notify_for_another_amount_from_the_sandbox_is_refused(world):
    w = world
    order = place(w)
    payment, _ = start_attempt(w, order)
    control(w, mode="wrong_amount", out_trade_no=payment.out_trade_no)
    result = paynotify.pay_order(w.mch_id, payment.out_trade_no)
    assert [n["status"] for n in result["notifies"]] == [400]
    assert counts(w, order)["status"] == CREATED
    assert outcomes(order) == ["refused:amount"]


# --- the active query ------------------------------------------------------------------------


def test_the_query_job_finds_a_payment_whose_notify_never_came(world, paid_signals):
    w = world
    order = place(w)
    payment, _ = start_attempt(w, order)
    unpaid = place(w, quantity=1)
    unpaid_payment, _ = start_attempt(w, unpaid)
    control(w, mode="never")
    paynotify.pay_order(w.mch_id, payment.out_trade_no)
    db.session.execute(
        text("UPDATE shop_payment SET created_at = created_at - interval '3 minutes'")
    )
    db.session.commit()

    assert jobs.query_pending() == 1
    assert counts(w, order) == {"status": PAID, "paid_payments": 1, "earned": 1, "purchases": 1}
    assert db.session.get(Payment, payment.id).confirmed_by == "query"
    assert db.session.get(Order, unpaid.id).status == CREATED
    assert db.session.get(Payment, unpaid_payment.id).status == PAY_PENDING
    assert jobs.query_pending() == 0 and paid_signals == [order.id]


def test_releasing_an_unpaid_order_closes_the_trade_at_wechat(world):
    w = world
    order = place(w)
    payment, _ = start_attempt(w, order)
    db.session.execute(
        text("UPDATE shop_order SET pay_deadline = now() - interval '1 minute' WHERE id = :id"),
        {"id": order.id},
    )
    db.session.commit()
    jobs.release(order.id)
    db.session.commit()
    assert paystore.get_order(w.mch_id, payment.out_trade_no)["trade_state"] == "CLOSED"
    with pytest.raises(paynotify.PayRefused):
        paynotify.pay_order(w.mch_id, payment.out_trade_no)
    fresh()
    assert db.session.get(Order, order.id).status != PAID


# --- refunds ---------------------------------------------------------------------------------


def _paid(w: World, **kw) -> tuple[Order, Payment]:
    order = place(w, **kw)
    payment, _ = start_attempt(w, order)
    paynotify.pay_order(w.mch_id, payment.out_trade_no)
    assert counts(w, order)["status"] == PAID
    return db.session.get(Order, order.id), db.session.get(Payment, payment.id)


def test_a_refund_whose_notify_comes_late_and_twice_has_one_effect(world):
    w = world
    c = coupon(w.member.id, value_fen=500, name="满减券")
    order, payment = _paid(w, coupons=[c.code], points=500)
    assert order.pay_fen == 4000 - 500 - 500 + 800
    earned = order.points_earned
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    paystore.hold_refunds(w.mch_id, True)  # WeChat takes its time

    refund = refunds.start(order_id=order.id, items=[refunds.Item(line.id, quantity=1)])
    db.session.commit()
    assert refunds.submit(refund_id=refund.id) == RF_PROCESSING
    db.session.commit()
    balance_before = points_now(w)

    # The refund completes; its notify is lost; the query job learns it first.
    control(w, mode="never", out_trade_no=payment.out_trade_no)
    paynotify.complete_refund(w.mch_id, refund.out_refund_no)
    assert refunds.query_processing(older_than=dt.timedelta(0)) == 1
    db.session.commit()
    # Then the notify arrives, late, and twice.
    paystore.clear_controls(w.mch_id)
    sandbox_refund = paystore.get_refund(w.mch_id, refund.out_refund_no)
    answers = [paynotify.notify_refund(sandbox_refund) for _ in range(2)]
    assert [a["status"] for a in answers] == [204, 204]

    fresh()
    done = db.session.get(type(refund), refund.id)
    assert done.status == RF_SUCCESS and done.refund_id == sandbox_refund["refund_id"]
    assert done.amount_fen == sandbox_refund["refund"] == line.pay_fen // 2
    assert outcomes(order)[-2:] == ["duplicate", "duplicate"]
    reversed_ = db.session.scalars(
        select(PointsEntry).where(
            PointsEntry.idempotency_key == f"shop:{refund.out_refund_no}:reverse"
        )
    ).all()
    returned = db.session.scalars(
        select(PointsEntry).where(
            PointsEntry.idempotency_key == f"shop:{refund.out_refund_no}:return"
        )
    ).all()
    assert len(reversed_) == 1 and len(returned) == 1
    assert -reversed_[0].points == earned // 2 and returned[0].points == 250
    after = points_now(w)
    assert after == balance_before - earned // 2 + 250
    refunds_of_member = db.session.scalar(
        select(func.count()).where(
            MemberActivity.member_id == w.member.id, MemberActivity.kind == "refund"
        )
    )
    assert refunds_of_member == 1


def test_a_refund_notify_first_then_again(world):
    w = world
    order, payment = _paid(w)
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    paystore.hold_refunds(w.mch_id, True)
    refund = refunds.start(order_id=order.id, items=[refunds.Item(line.id, quantity=2)])
    db.session.commit()
    refunds.submit(refund_id=refund.id)
    db.session.commit()
    paynotify.complete_refund(w.mch_id, refund.out_refund_no)  # the notify: applied
    again = paynotify.notify_refund(paystore.get_refund(w.mch_id, refund.out_refund_no))
    assert again["status"] == 204
    fresh()
    assert db.session.get(type(refund), refund.id).status == RF_SUCCESS
    assert outcomes(order).count("applied") == 2  # the payment's, then the refund's
    assert outcomes(order).count("duplicate") == 1
    assert refunds.query_processing(older_than=dt.timedelta(0)) == 0


def test_a_refund_notify_for_another_amount_is_refused(world):
    w = world
    order, payment = _paid(w)
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    paystore.hold_refunds(w.mch_id, True)
    refund = refunds.start(order_id=order.id, items=[refunds.Item(line.id, quantity=1)])
    db.session.commit()
    refunds.submit(refund_id=refund.id)
    db.session.commit()
    forged = {**paystore.get_refund(w.mch_id, refund.out_refund_no), "status": "SUCCESS"}
    forged["refund"] += 1
    answer = paynotify.notify_refund(forged)
    assert answer["status"] == 400
    fresh()
    assert db.session.get(type(refund), refund.id).status == RF_PROCESSING


# --- reconciliation --------------------------------------------------------------------------


def test_reconciliation_with_the_sandbox_trade_bill(world):
    w = world
    order, payment = _paid(w)
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    refund = refunds.start(order_id=order.id, items=[refunds.Item(line.id, quantity=1)])
    db.session.commit()
    paystore.hold_refunds(w.mch_id, True)
    refunds.submit(refund_id=refund.id)
    db.session.commit()
    paynotify.complete_refund(w.mch_id, refund.out_refund_no)
    fresh()
    assert db.session.get(type(refund), refund.id).status == RF_SUCCESS
    today = dt.datetime.now(CHINA).date()

    issues = reconcile.compare(bill_date=today, rows=gateway.pay_trade_bill(w.brand.id, today))
    assert issues == []  # the bill and our books agree
    assert reconcile.run_day(bill_date=today) == 0
    db.session.commit()

    # A payment WeChat took whose notify never came and that nobody queried yet.
    lost = place(w, quantity=1)
    lost_payment, _ = start_attempt(w, lost)
    control(w, mode="never", out_trade_no=lost_payment.out_trade_no)
    paynotify.pay_order(w.mch_id, lost_payment.out_trade_no)
    assert reconcile.run_day(bill_date=today) == 1
    db.session.commit()
    issue = db.session.scalars(
        select(ReconciliationIssue).where(ReconciliationIssue.brand_id == w.brand.id)
    ).one()
    assert (issue.out_trade_no, issue.kind) == (lost_payment.out_trade_no, "missing_here")
    assert issue.ours == f"pending {lost.pay_fen}" and issue.theirs == f"SUCCESS {lost.pay_fen}"
    assert reconcile.run_day(bill_date=today) == 0  # running the day again adds nothing


# --- the member's pay page -------------------------------------------------------------------


def test_the_pay_page_gives_parameters_the_sandbox_pay_shim_pays_with(world, sandbox_url):
    w = world
    order = place(w)
    client = w.app.test_client()
    factories.sign_in_member(client, w.brand, w.member.id)
    page_url = f"/m/{w.brand.slug}/shop/orders/{order.order_no}/pay"
    page = client.get(page_url).get_data(as_text=True)
    assert "sandbox/wxpay.js" in page and "¥48.00" in page
    headers = {"X-CSRFToken": factories.csrf(page), "Accept": "application/json"}

    started = client.post(page_url, headers=headers)
    assert started.status_code == 200, started.get_data(as_text=True)
    params = started.get_json()["params"]
    # What static/sandbox/wxpay.js posts when the member confirms in its pay sheet.
    paid = requests.post(sandbox_url + "/_sandbox/pay/v3/jsapi", json=params, timeout=10)
    assert paid.status_code == 200, paid.text
    # The notify reached the app at its public address before the page's own check.
    assert [n["status"] for n in paid.json()["notifies"]] == [204]
    assert paystore.get_order(w.mch_id, started.get_json()["out_trade_no"])["notify_url"] == (
        w.notify_url
    )
    checked = client.post(page_url + "/check", headers=headers).get_json()
    assert checked["status"] == PAID
    assert checked["next"].endswith(f"/shop/orders/{order.order_no}")
    assert counts(w, order) == {"status": PAID, "paid_payments": 1, "earned": 1, "purchases": 1}


def test_wechat_pay_busy_at_prepay_answers_503_json_and_keeps_nothing(world):
    w = world
    order = place(w)
    client = w.app.test_client()
    factories.sign_in_member(client, w.brand, w.member.id)
    page_url = f"/m/{w.brand.slug}/shop/orders/{order.order_no}/pay"
    headers = {"X-CSRFToken": factories.csrf(client, page_url), "Accept": "application/json"}
    paystore.inject_system_error(w.mch_id, 10)
    r = client.post(page_url, headers=headers)
    assert r.status_code == 503
    assert r.get_json()["error"] == {
        "code": "pay_unavailable",
        "message": "无法发起支付，请重试。",
        "field": None,
    }
    paystore.clear_controls(w.mch_id)
    fresh()
    assert db.session.scalar(select(func.count()).where(Payment.order_id == order.id)) == 0
    r = client.post(page_url, headers=headers)  # WeChat Pay is back
    assert r.status_code == 200 and r.get_json()["out_trade_no"] == order.order_no + "P1"


def test_the_mini_program_pays_with_its_own_appid(wx_app, wx_client, wx_brand, wx_consumer,
                                                  sandbox_url, paid_signals):  # fmt: skip
    mch_id = "19" + "".join(secrets.choice("0123456789") for _ in range(8))
    give_pay_settings(wx_brand, mch_id=mch_id)
    db.session.commit()
    with use_brand(wx_brand.id):
        db.session.add(ShopSettings(shipping_fee_fen=0, points_per_yuan=100))
        db.session.commit()
        sku_id = product(name="铁观音", price_fen=3000, stock_units=10).id
    token, _ = activate(wx_client, wx_brand, wx_consumer, phone="13912340000")
    h = bearer(token)
    r = wx_client.post(
        api(wx_brand, "shop/cart"), json={"sku_id": sku_id, "quantity": 1}, headers=h
    )
    assert r.status_code == 200, r.json
    r = wx_client.post(
        api(wx_brand, "shop/checkout"),
        json={"address": ADDRESS, "idempotency_key": "mp1"},
        headers=h,
    )
    assert r.status_code == 201, r.json
    order_no = r.json["order_no"]

    r = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/pay"), headers=h)
    assert r.status_code == 200, r.json
    params = r.json["params"]
    assert params["appId"] == wx_brand.mp_appid and params["signType"] == "RSA"
    trade = paystore.get_order(mch_id, order_no + "P1")
    assert (trade["appid"], trade["openid"], trade["total"]) == (
        wx_brand.mp_appid,
        wx_consumer["mp_openid"],
        3000,
    )
    assert trade["notify_url"] == f"{wx_app.config['PUBLIC_URL']}/pay/notify/{wx_brand.slug}"
    # wx.requestPayment with these parameters: the sandbox checks paySign and pays.
    paid = requests.post(sandbox_url + "/_sandbox/pay/v3/jsapi", json=params, timeout=10)
    assert paid.status_code == 200, paid.text
    assert [n["status"] for n in paid.json()["notifies"]] == [204]
    r = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/pay/check"), headers=h)
    assert r.json["status"] == PAID and len(paid_signals) == 1
    paystore.clear_controls(mch_id)
