"""The sandbox's WeChat Pay: request signatures checked, answers signed, and the delivery
modes (twice, late, out of order, wrong amount, never) doing what they say."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
import zoneinfo

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.support.apps import build_app
from tests.support.wechat_sandbox import WX_MCH_ID, give_pay_settings
from wechat import gateway
from wechat.sandbox import paynotify, paystore

CHINA = zoneinfo.ZoneInfo("Asia/Shanghai")


def _place(brand, consumer, recorder, no="SO200001", amount=5000):
    return gateway.pay_jsapi_prepay(
        brand.id,
        mini_program=False,
        openid=consumer["openid"],
        out_trade_no=no,
        description="会员专享 T恤",
        amount_fen=amount,
        notify_url=recorder.url + "/notify",
        time_expire=dt.datetime.now(CHINA) + dt.timedelta(minutes=15),
    )


def _posts(recorder, path="/notify"):
    return [r for r in recorder.requests if r["path"] == path]


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _parse(brand, post):
    return gateway.pay_parse_notify(brand.id, post["headers"], post["raw"])


def test_requests_without_a_merchant_signature_are_refused(wx_brand, sandbox_url):
    res = requests.post(
        sandbox_url + "/pay/v3/pay/transactions/jsapi",
        json={"mchid": WX_MCH_ID},
        headers={"Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{WX_MCH_ID}"'},
        timeout=10,
    )
    assert res.status_code == 401 and res.json()["code"] == "SIGN_ERROR"
    res = requests.get(sandbox_url + "/pay/v3/pay/transactions/out-trade-no/SO1", timeout=10)
    assert res.status_code == 401
    # Even the refusal is signed by the sandbox's WeChat Pay key.
    key = serialization.load_pem_public_key(paystore.platform_public_key()["public_key"].encode())
    h = res.headers
    key.verify(
        base64.b64decode(h["Wechatpay-Signature"]),
        f"{h['Wechatpay-Timestamp']}\n{h['Wechatpay-Nonce']}\n{res.text}\n".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert h["Wechatpay-Serial"] == paystore.platform_public_key()["public_key_id"]


def test_the_platform_key_is_made_once_and_published(wx_ctx, sandbox_url):
    first = paystore.platform_public_key()
    assert paystore.platform_public_key() == first
    published = requests.get(sandbox_url + "/_sandbox/pay/v3/platform-key", timeout=10).json()
    assert published == first and first["public_key_id"].startswith("PUB_KEY_ID_")


def test_normal_delivery_posts_one_notify(wx_brand, wx_consumer, recorder):
    recorder.answer = gateway.pay_notify_answer(True)
    _place(wx_brand, wx_consumer, recorder)
    result = paynotify.pay_order(WX_MCH_ID, "SO200001")
    assert [n["acknowledged"] for n in result["notifies"]] == [True]
    assert len(_posts(recorder)) == 1
    log = paynotify.deliveries(WX_MCH_ID, "SO200001")
    assert [(d["kind"], d["status"]) for d in log] == [("transaction", 204)]


def test_twice_delivers_the_same_notify_twice(wx_brand, wx_consumer, recorder):
    paystore.set_delivery(WX_MCH_ID, "twice")
    _place(wx_brand, wx_consumer, recorder)
    paynotify.pay_order(WX_MCH_ID, "SO200001")

    first, second = _posts(recorder)
    a, b = _parse(wx_brand, first), _parse(wx_brand, second)
    assert a.notify_id == b.notify_id and a.transaction_id == b.transaction_id
    assert a.amount_total == b.amount_total == 5000


def test_delay_delivers_late(wx_brand, wx_consumer, recorder):
    paystore.set_delivery(WX_MCH_ID, "delay", delay=1.0)
    _place(wx_brand, wx_consumer, recorder)
    paid_at = time.monotonic()
    assert paynotify.pay_order(WX_MCH_ID, "SO200001")["notifies"] == []

    time.sleep(0.5)
    assert _posts(recorder) == []
    # Paid already: a page's active query sees it before the notify arrives.
    assert gateway.pay_query(wx_brand.id, "SO200001").trade_state == "SUCCESS"
    assert _wait_for(lambda: len(_posts(recorder)) == 1)
    assert time.monotonic() - paid_at >= 1.0
    assert _parse(wx_brand, _posts(recorder)[0]).out_trade_no == "SO200001"


def test_never_pays_without_a_notify(wx_brand, wx_consumer, recorder):
    paystore.set_delivery(WX_MCH_ID, "never", out_trade_no="SO200001")
    _place(wx_brand, wx_consumer, recorder)
    _place(wx_brand, wx_consumer, recorder, no="SO200002")

    paynotify.pay_order(WX_MCH_ID, "SO200001")
    paynotify.pay_order(WX_MCH_ID, "SO200002")

    # Only the other order's notify came; the first is paid all the same.
    assert [_parse(wx_brand, p).out_trade_no for p in _posts(recorder)] == ["SO200002"]
    state = gateway.pay_query(wx_brand.id, "SO200001")
    assert state.trade_state == "SUCCESS" and state.transaction_id


def test_wrong_amount_sends_a_correctly_signed_notify_with_another_amount(
    wx_brand, wx_consumer, recorder
):
    paystore.set_delivery(WX_MCH_ID, "wrong_amount", amount=1)
    _place(wx_brand, wx_consumer, recorder)
    paynotify.pay_order(WX_MCH_ID, "SO200001")

    notice = _parse(wx_brand, _posts(recorder)[0])
    # It verifies: only the shop, comparing with its order, can refuse it.
    assert notice.amount_total == 1 and notice.out_trade_no == "SO200001"
    assert gateway.pay_query(wx_brand.id, "SO200001").amount_total == 5000


def test_out_of_order_sends_the_refund_notify_before_the_payment_notify(
    wx_brand, wx_consumer, recorder
):
    paystore.set_delivery(WX_MCH_ID, "out_of_order", out_trade_no="SO200001")
    _place(wx_brand, wx_consumer, recorder)
    paynotify.pay_order(WX_MCH_ID, "SO200001")
    assert recorder.requests == []

    gateway.pay_refund(
        wx_brand.id,
        out_trade_no="SO200001",
        out_refund_no="RF200001",
        refund_fen=5000,
        total_fen=5000,
        reason="不想要了",
        notify_url=recorder.url + "/notify",
    )

    assert _wait_for(lambda: len(_posts(recorder)) == 2)
    kinds = [_parse(wx_brand, p).kind for p in _posts(recorder)]
    assert kinds == ["refund", "transaction"]
    # The sandbox logs a delivery once the app has answered it, just after the post lands.
    assert _wait_for(lambda: len(paynotify.deliveries(WX_MCH_ID, "SO200001")) == 2)
    log = paynotify.deliveries(WX_MCH_ID, "SO200001")
    assert [d["kind"] for d in log] == ["refund", "transaction"]


def test_held_refunds_complete_on_demand_with_the_status_given(wx_brand, wx_consumer, recorder):
    paystore.hold_refunds(WX_MCH_ID)
    _place(wx_brand, wx_consumer, recorder)
    paynotify.pay_order(WX_MCH_ID, "SO200001")
    kwargs = dict(
        out_trade_no="SO200001",
        refund_fen=5000,
        total_fen=5000,
        reason="x",
        notify_url=recorder.url + "/refund",
    )
    gateway.pay_refund(wx_brand.id, out_refund_no="RF1", **kwargs)
    time.sleep(0.4)
    assert gateway.pay_refund_query(wx_brand.id, "RF1").status == "PROCESSING"

    paynotify.complete_refund(WX_MCH_ID, "RF1", "ABNORMAL")

    assert gateway.pay_refund_query(wx_brand.id, "RF1").status == "ABNORMAL"
    notice = _parse(wx_brand, _posts(recorder, "/refund")[0])
    assert (notice.event_type, notice.refund_status) == ("REFUND.ABNORMAL", "ABNORMAL")
    # An abnormal refund gives the amount back: it can be refunded again.
    assert gateway.pay_refund(wx_brand.id, out_refund_no="RF2", **kwargs).refund_fen == 5000


def test_injected_system_errors_are_taken_one_by_one_and_none_leaves_nothing(wx_ctx):
    from core.redis import get_redis

    paystore.inject_system_error(WX_MCH_ID, times=2)
    assert [paystore.take_system_error(WX_MCH_ID) for _ in range(4)] == [True, True, False, False]
    # Taking none writes nothing: a call in flight across the next test's flush cannot
    # leave an error behind for it.
    get_redis().delete(paystore.key_of("syserr", WX_MCH_ID))
    assert paystore.take_system_error(WX_MCH_ID) is False
    assert get_redis().exists(paystore.key_of("syserr", WX_MCH_ID)) == 0


def test_control_endpoints_over_http(wx_brand, wx_consumer, recorder, sandbox_url):
    def control(**body):
        return requests.post(sandbox_url + "/_sandbox/pay/v3/control", json=body, timeout=10)

    assert control(mch_id=WX_MCH_ID, mode="sideways").status_code == 400
    assert control(mch_id="1999999999", mode="twice").status_code == 404
    assert control(mch_id=WX_MCH_ID, mode="twice").json() == {"ok": True}
    _place(wx_brand, wx_consumer, recorder)
    res = requests.post(
        sandbox_url + "/_sandbox/pay/v3/pay",
        json={"mch_id": WX_MCH_ID, "out_trade_no": "SO200001"},
        timeout=10,
    )
    assert res.status_code == 200 and len(res.json()["notifies"]) == 2
    again = requests.post(
        sandbox_url + "/_sandbox/pay/v3/redeliver",
        json={"mch_id": WX_MCH_ID, "out_trade_no": "SO200001", "times": 3},
        timeout=10,
    )
    assert len(again.json()["notifies"]) == 3 and len(_posts(recorder)) == 5
    notices = [_parse(wx_brand, p) for p in _posts(recorder)]
    assert len({(n.transaction_id, n.notify_id) for n in notices}) == 1

    assert control(mch_id=WX_MCH_ID, system_errors=2).status_code == 200
    for _ in range(2):
        try:
            gateway.pay_query(wx_brand.id, "SO200001")
        except gateway.RetryableError:
            continue
        raise AssertionError("SYSTEM_ERROR was not injected")
    assert gateway.pay_query(wx_brand.id, "SO200001").trade_state == "SUCCESS"
    assert control(mch_id=WX_MCH_ID, reset=True).status_code == 200
    assert paystore.delivery_for(WX_MCH_ID, "SO200001")["mode"] == "normal"


def test_concurrent_taps_pay_once_and_concurrent_refunds_never_exceed_the_total(
    wx_brand, wx_consumer, recorder, wx_app
):
    _place(wx_brand, wx_consumer, recorder, amount=100)
    outcomes: list[str] = []
    refunds: list[str] = []
    barrier = threading.Barrier(10)

    def tap():
        with wx_app.app_context():
            barrier.wait()
            try:
                paynotify.pay_order(WX_MCH_ID, "SO200001")
                outcomes.append("paid")
            except paynotify.PayRefused as exc:
                outcomes.append(exc.reason)

    threads = [threading.Thread(target=tap) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("paid") == 1 and outcomes.count("ORDERPAID") == 9
    assert len(_posts(recorder)) == 1

    barrier = threading.Barrier(10)

    def refund(i):
        with wx_app.app_context():
            barrier.wait()
            try:
                gateway.pay_refund(
                    wx_brand.id,
                    out_trade_no="SO200001",
                    out_refund_no=f"RF-{i % 5}",  # five numbers, each asked for twice
                    refund_fen=30,
                    total_fen=100,
                    reason="x",
                    notify_url=recorder.url + "/refund",
                )
                refunds.append(f"RF-{i % 5}")
            except gateway.PayError as exc:
                refunds.append(exc.code)

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted = {r for r in refunds if r.startswith("RF-")}
    assert len(granted) == 3  # 3 x 30 fen fit in 100, a fourth does not
    assert refunds.count("INVALID_REQUEST") == 10 - sum(r.startswith("RF-") for r in refunds)
    stored = paystore.refunds_of(WX_MCH_ID)
    assert sorted(r["out_refund_no"] for r in stored) == sorted(granted)
    assert sum(r["refund"] for r in stored) == 90


def test_inprocess_sandbox_delivers_notifies_to_this_app(app):
    nowhere = "http://127.0.0.1:9"  # nothing listens: a real HTTP post would fail
    local = build_app(
        WECHAT_SANDBOX_INPROCESS="1",
        PUBLIC_URL=nowhere,
        WECHAT_API_BASE=nowhere + "/sandbox/wechat",
    )
    from core.db import db
    from tests import factories

    with local.app_context():
        brand = factories.brand(appid="wxinproc00000001", mp_appid="wxinprocmp000001")
        give_pay_settings(brand, mch_id="1900000777")
        db.session.commit()
        params = gateway.pay_jsapi_prepay(
            brand.id,
            mini_program=False,
            openid="oinproc",
            out_trade_no="SO300001",
            description="x",
            amount_fen=1,
            notify_url=nowhere + "/no-such-page",
            time_expire=dt.datetime.now(CHINA) + dt.timedelta(minutes=5),
        )
        res = local.test_client().post("/sandbox/wechat/_sandbox/pay/v3/jsapi", json=params)
        assert res.status_code == 200, res.get_data(as_text=True)
        # The app itself answered the notify (404: no page there), not a refused connection.
        [notify] = res.get_json()["notifies"]
        assert notify["status"] == 404
        assert gateway.pay_query(brand.id, "SO300001").trade_state == "SUCCESS"
        db.session.remove()
