"""WeChat Pay APIv3 through the gateway against the sandbox: prepay and the page's paySign,
notifies verified and decrypted (and forged ones refused), query, close, refunds, the
trade bill, errors, and the merchant secrets at rest."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import zoneinfo

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import text

from core.db import db
from org import services as org_services
from tests.support.wechat_sandbox import WX_APIV3_KEY, WX_MCH_ID, merchant_keys
from wechat import gateway
from wechat.pay_bill import parse_trade_bill
from wechat.sandbox import paynotify, paystore, store

CHINA = zoneinfo.ZoneInfo("Asia/Shanghai")


def _prepay(brand, consumer, recorder, out_trade_no="SO100001", amount=2990, **kw):
    return gateway.pay_jsapi_prepay(
        brand.id,
        mini_program=kw.pop("mini_program", False),
        openid=kw.pop("openid", consumer["openid"]),
        out_trade_no=out_trade_no,
        description="Demo 外套",
        amount_fen=amount,
        notify_url=recorder.url + "/pay/notify",
        time_expire=dt.datetime.now(CHINA) + dt.timedelta(minutes=15),
        attach="order:1001",
        **kw,
    )


def _verify_rsa(public_pem: str, message: str, signature: str) -> bool:
    key = serialization.load_pem_public_key(public_pem.encode())
    try:
        key.verify(
            base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except Exception:
        return False
    return True


def _phone_pays(sandbox_url, params) -> requests.Response:
    return requests.post(sandbox_url + "/_sandbox/pay/v3/jsapi", json=params, timeout=10)


def _notify(recorder, n=1, path="/pay/notify", timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        got = [r for r in recorder.requests if r["path"] == path]
        if len(got) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(got) >= n, recorder.requests
    return got[n - 1]


# --- prepay and the page ---------------------------------------------------------------------


def test_prepay_gives_page_parameters_whose_pay_sign_verifies(wx_brand, wx_consumer, recorder):
    params = _prepay(wx_brand, wx_consumer, recorder)

    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == wx_brand.appid and params["signType"] == "RSA"
    assert abs(int(params["timeStamp"]) - time.time()) < 5
    message = "\n".join(params[k] for k in ("appId", "timeStamp", "nonceStr", "package")) + "\n"
    assert _verify_rsa(merchant_keys()["public_key"], message, params["paySign"])
    assert not _verify_rsa(merchant_keys()["public_key"], message + "x", params["paySign"])
    order = paystore.get_order(WX_MCH_ID, "SO100001")
    assert params["package"] == f"prepay_id={order['prepay_id']}"
    assert (order["total"], order["openid"], order["trade_state"]) == (
        2990,
        wx_consumer["openid"],
        "NOTPAY",
    )
    assert order["description"] == "Demo 外套" and order["attach"] == "order:1001"
    # The same order placed again (a page reload) gives the same prepay_id.
    assert _prepay(wx_brand, wx_consumer, recorder)["package"] == params["package"]


def test_mini_program_prepay_uses_the_mini_program_appid(wx_brand, wx_consumer, recorder):
    params = _prepay(
        wx_brand, wx_consumer, recorder, mini_program=True, openid=wx_consumer["mp_openid"]
    )
    assert params["appId"] == wx_brand.mp_appid
    assert paystore.get_order(WX_MCH_ID, "SO100001")["appid"] == wx_brand.mp_appid


def test_same_trade_number_with_another_amount_is_refused(wx_brand, wx_consumer, recorder):
    _prepay(wx_brand, wx_consumer, recorder)
    with pytest.raises(gateway.PayError) as raised:
        _prepay(wx_brand, wx_consumer, recorder, amount=1)
    assert raised.value.code == "OUT_TRADE_NO_USED"


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": True},
        {"out_trade_no": "short"},
        {"out_trade_no": "has space 123"},
        {"openid": ""},
    ],
)
def test_bad_prepay_arguments_never_reach_wechat(wx_brand, wx_consumer, recorder, changes):
    store.reset_calls()
    with pytest.raises(ValueError):
        _prepay(wx_brand, wx_consumer, recorder, **changes)
    assert store.calls("/pay/v3/pay/transactions/jsapi") == 0


def test_a_naive_expiry_time_is_refused(wx_brand, wx_consumer, recorder):
    with pytest.raises(ValueError):
        gateway.pay_jsapi_prepay(
            wx_brand.id,
            mini_program=False,
            openid=wx_consumer["openid"],
            out_trade_no="SO100001",
            description="x",
            amount_fen=1,
            notify_url=recorder.url,
            time_expire=dt.datetime.now(),
        )


def test_a_brand_without_merchant_settings_is_not_configured(ctx, recorder):
    from tests import factories

    brand = factories.brand(appid="wxnopay00000001")
    with pytest.raises(gateway.NotConfigured):
        gateway.pay_query(brand.id, "SO100001")


# --- paying and the notify -------------------------------------------------------------------


def test_the_phone_pays_and_the_notify_verifies_and_decrypts(
    wx_brand, wx_consumer, recorder, sandbox_url
):
    recorder.answer = gateway.pay_notify_answer(True)
    params = _prepay(wx_brand, wx_consumer, recorder)

    res = _phone_pays(sandbox_url, params)

    assert res.status_code == 200, res.text
    assert res.json()["err_msg"] == "get_brand_wcpay_request:ok"
    assert res.json()["notifies"][0]["acknowledged"] is True
    post = _notify(recorder)
    assert post["headers"]["Wechatpay-Serial"] == wx_brand.pay_public_key_id
    notice = gateway.pay_parse_notify(wx_brand.id, post["headers"], post["raw"])
    assert notice.kind == "transaction" and notice.event_type == "TRANSACTION.SUCCESS"
    assert (notice.out_trade_no, notice.trade_state, notice.amount_total) == (
        "SO100001",
        "SUCCESS",
        2990,
    )
    assert notice.payer_total == 2990 and notice.attach == "order:1001"
    assert notice.openid == wx_consumer["openid"] and notice.appid == wx_brand.appid
    assert notice.mchid == WX_MCH_ID and notice.transaction_id.startswith("4200")
    assert notice.notify_id and notice.success_time.tzinfo is not None
    state = gateway.pay_query(wx_brand.id, "SO100001")
    assert (state.trade_state, state.transaction_id, state.amount_total) == (
        "SUCCESS",
        notice.transaction_id,
        2990,
    )
    # Paying again is refused, and so is placing the paid order again.
    assert _phone_pays(sandbox_url, params).json()["reason"] == "ORDERPAID"
    with pytest.raises(gateway.PayError) as raised:
        _prepay(wx_brand, wx_consumer, recorder)
    assert raised.value.code == "ORDERPAID"


def test_a_tampered_pay_sign_does_not_pay(wx_brand, wx_consumer, recorder, sandbox_url):
    params = _prepay(wx_brand, wx_consumer, recorder)
    forged = {**params, "nonceStr": params["nonceStr"][::-1]}

    res = _phone_pays(sandbox_url, forged)

    assert res.status_code == 400 and res.json()["reason"] == "paySign does not verify"
    assert gateway.pay_query(wx_brand.id, "SO100001").trade_state == "NOTPAY"
    assert recorder.requests == []


def _genuine_notify(brand, consumer, *, mchid=WX_MCH_ID, appid=None, total=2990):
    order = {
        "mchid": mchid,
        "appid": appid or brand.appid,
        "out_trade_no": "SO100001",
        "transaction_id": "4200000000000000000000000001",
        "success_time": paystore.now_rfc3339(),
        "openid": consumer["openid"],
        "total": total,
    }
    return paynotify.build_notify(
        WX_APIV3_KEY, paynotify.transaction_resource(order), kind="transaction"
    )


def test_a_genuine_notify_built_independently_parses(wx_brand, wx_consumer):
    body = _genuine_notify(wx_brand, wx_consumer)
    notice = gateway.pay_parse_notify(wx_brand.id, paystore.signed_headers(body), body.encode())
    assert notice.amount_total == 2990 and notice.out_trade_no == "SO100001"
    # Header names arrive in any case (Flask title-cases, some proxies lower-case).
    lower = {k.lower(): v for k, v in paystore.signed_headers(body).items()}
    assert gateway.pay_parse_notify(wx_brand.id, lower, body.encode()).amount_total == 2990


def _tamper_ciphertext(body: str) -> str:
    envelope = json.loads(body)
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[3] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(envelope, ensure_ascii=False)


def _other_key_signature(body: str, headers: dict) -> dict:
    other = serialization.load_pem_private_key(
        paystore.new_merchant_keys()["private_key"].encode(), password=None
    )
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body}\n"
    sig = other.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {**headers, "Wechatpay-Signature": base64.b64encode(sig).decode()}


FORGERIES = {
    # changed in transit after WeChat Pay signed it
    "bad_signature": lambda b, c: (
        (body := _genuine_notify(b, c)),
        paystore.signed_headers(body),
        body.replace("支付成功", "支付成功!"),
    ),
    "signed_by_someone_else": lambda b, c: (
        (body := _genuine_notify(b, c)),
        _other_key_signature(body, paystore.signed_headers(body)),
        body,
    ),
    "wrong_serial": lambda b, c: (
        (body := _genuine_notify(b, c)),
        paystore.signed_headers(body, serial="PUB_KEY_ID_0000000000OTHER"),
        body,
    ),
    "stale_timestamp": lambda b, c: (
        (body := _genuine_notify(b, c)),
        paystore.signed_headers(body, timestamp=int(time.time()) - 600),
        body,
    ),
    "future_timestamp": lambda b, c: (
        (body := _genuine_notify(b, c)),
        paystore.signed_headers(body, timestamp=int(time.time()) + 600),
        body,
    ),
    "wrong_merchant": lambda b, c: (
        (body := _genuine_notify(b, c, mchid="1900000999")),
        paystore.signed_headers(body),
        body,
    ),
    "wrong_app": lambda b, c: (
        (body := _genuine_notify(b, c, appid="wxsomeoneelse0001")),
        paystore.signed_headers(body),
        body,
    ),
    "too_large": lambda b, c: (
        (body := _genuine_notify(b, c) + " " * 70_000),
        paystore.signed_headers(body),
        body,
    ),
    "bad_json": lambda b, c: (
        (body := '{"id": "x", "resource": {'),
        paystore.signed_headers(body),
        body,
    ),
    "bad_ciphertext": lambda b, c: (
        (body := _tamper_ciphertext(_genuine_notify(b, c))),
        paystore.signed_headers(body),
        body,
    ),
    "missing_headers": lambda b, c: (
        (body := _genuine_notify(b, c)),
        {k: v for k, v in paystore.signed_headers(body).items() if k != "Wechatpay-Signature"},
        body,
    ),
}
REASONS = {
    "signed_by_someone_else": "bad_signature",
    "future_timestamp": "stale_timestamp",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_notifies_are_refused_with_the_reason(wx_brand, wx_consumer, forgery):
    _, headers, body = FORGERIES[forgery](wx_brand, wx_consumer)
    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.pay_parse_notify(wx_brand.id, headers, body.encode())
    assert raised.value.reason == REASONS.get(forgery, forgery)


def test_a_notify_with_another_apiv3_key_does_not_decrypt(wx_brand, wx_consumer):
    order_body = _genuine_notify(wx_brand, wx_consumer)
    envelope = json.loads(order_body)
    envelope["resource"] = paynotify.encrypt_resource(
        "another32characterAPIv3keyXXXXXX", '{"mchid": "1900000109"}', "transaction"
    )
    body = json.dumps(envelope)
    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.pay_parse_notify(wx_brand.id, paystore.signed_headers(body), body.encode())
    assert raised.value.reason == "bad_ciphertext"


def test_notify_answers():
    assert gateway.pay_notify_answer(True) == ("", 204)
    body, status = gateway.pay_notify_answer(False, "订单金额不符")
    assert status == 400 and json.loads(body) == {"code": "FAIL", "message": "订单金额不符"}
    assert gateway.pay_notify_answer(False, "db down", status=500)[1] == 500


# --- query, close ------------------------------------------------------------------------------


def test_query_of_an_unknown_order_and_of_an_unpaid_one(wx_brand, wx_consumer, recorder):
    with pytest.raises(gateway.PayError) as raised:
        gateway.pay_query(wx_brand.id, "SO999999")
    assert raised.value.code == "ORDER_NOT_EXIST" and raised.value.status == 404
    _prepay(wx_brand, wx_consumer, recorder)
    state = gateway.pay_query(wx_brand.id, "SO100001")
    assert (state.trade_state, state.transaction_id, state.success_time) == ("NOTPAY", "", None)
    assert state.amount_total == 2990


def test_close_is_idempotent_and_a_closed_order_cannot_be_paid(
    wx_brand, wx_consumer, recorder, sandbox_url
):
    params = _prepay(wx_brand, wx_consumer, recorder)

    gateway.pay_close(wx_brand.id, "SO100001")
    gateway.pay_close(wx_brand.id, "SO100001")
    gateway.pay_close(wx_brand.id, "SO100404")  # never placed: nothing to close

    assert gateway.pay_query(wx_brand.id, "SO100001").trade_state == "CLOSED"
    assert _phone_pays(sandbox_url, params).json()["reason"] == "ORDER_CLOSED"
    assert recorder.requests == []


def test_closing_a_paid_order_is_refused(wx_brand, wx_consumer, recorder, sandbox_url):
    _phone_pays(sandbox_url, _prepay(wx_brand, wx_consumer, recorder))
    with pytest.raises(gateway.PayError) as raised:
        gateway.pay_close(wx_brand.id, "SO100001")
    assert raised.value.code == "ORDERPAID"


# --- refunds -----------------------------------------------------------------------------------


def _paid(brand, consumer, recorder, sandbox_url, out_trade_no="SO100001", amount=2990):
    res = _phone_pays(sandbox_url, _prepay(brand, consumer, recorder, out_trade_no, amount))
    assert res.status_code == 200, res.text
    return res.json()["transaction_id"]


def _refund(brand, recorder, out_refund_no="RF100001", fen=1000, total=2990, no="SO100001"):
    return gateway.pay_refund(
        brand.id,
        out_trade_no=no,
        out_refund_no=out_refund_no,
        refund_fen=fen,
        total_fen=total,
        reason="尺码不合适",
        notify_url=recorder.url + "/pay/refund-notify",
    )


def test_a_refund_completes_and_its_notify_verifies(wx_brand, wx_consumer, recorder, sandbox_url):
    recorder.answer = gateway.pay_notify_answer(True)
    transaction_id = _paid(wx_brand, wx_consumer, recorder, sandbox_url)

    refund = _refund(wx_brand, recorder)

    assert (refund.status, refund.refund_fen, refund.out_refund_no) == (
        "PROCESSING",
        1000,
        "RF100001",
    )
    assert refund.refund_id and refund.transaction_id == transaction_id
    post = _notify(recorder, path="/pay/refund-notify")
    notice = gateway.pay_parse_notify(wx_brand.id, post["headers"], post["raw"])
    assert notice.kind == "refund" and notice.event_type == "REFUND.SUCCESS"
    assert (notice.out_refund_no, notice.refund_id, notice.refund_status) == (
        "RF100001",
        refund.refund_id,
        "SUCCESS",
    )
    assert (notice.refund_fen, notice.amount_total, notice.out_trade_no) == (1000, 2990, "SO100001")
    done = gateway.pay_refund_query(wx_brand.id, "RF100001")
    assert (done.status, done.refund_fen) == ("SUCCESS", 1000) and done.success_time
    # Asking again with the same refund number is the same refund, not a second one.
    again = _refund(wx_brand, recorder)
    assert again.refund_id == refund.refund_id and again.status == "SUCCESS"
    assert gateway.pay_query(wx_brand.id, "SO100001").trade_state == "REFUND"


def test_refunds_never_exceed_the_payment(wx_brand, wx_consumer, recorder, sandbox_url):
    _paid(wx_brand, wx_consumer, recorder, sandbox_url)
    _refund(wx_brand, recorder, "RF1", fen=2000)

    with pytest.raises(gateway.PayError) as raised:
        _refund(wx_brand, recorder, "RF2", fen=991)
    assert raised.value.code == "INVALID_REQUEST"
    assert _refund(wx_brand, recorder, "RF3", fen=990).refund_fen == 990
    with pytest.raises(gateway.PayError) as raised:
        _refund(wx_brand, recorder, "RF1", fen=1)  # a used refund number, another amount
    assert raised.value.code == "INVALID_REQUEST"
    with pytest.raises(gateway.PayError) as raised:
        _refund(wx_brand, recorder, "RF4", fen=1, total=5000)  # not the order's total
    assert raised.value.code == "INVALID_REQUEST"


def test_refund_of_an_unpaid_order_and_query_of_an_unknown_refund(wx_brand, wx_consumer, recorder):
    _prepay(wx_brand, wx_consumer, recorder)
    with pytest.raises(gateway.PayError) as raised:
        _refund(wx_brand, recorder)
    assert raised.value.code == "INVALID_REQUEST"
    with pytest.raises(gateway.PayError) as raised:
        gateway.pay_refund_query(wx_brand.id, "RF-nope")
    assert raised.value.code == "RESOURCE_NOT_EXISTS"
    with pytest.raises(ValueError):
        _refund(wx_brand, recorder, fen=3000)  # more than the order: refused before sending


# --- the trade bill ----------------------------------------------------------------------------


def test_trade_bill_lists_payments_and_refunds(wx_brand, wx_consumer, recorder, sandbox_url):
    first = _paid(wx_brand, wx_consumer, recorder, sandbox_url, "SO100001", 2990)
    second = _paid(wx_brand, wx_consumer, recorder, sandbox_url, "SO100002", 15000)
    refund = _refund(wx_brand, recorder, "RF100002", fen=5050, total=15000, no="SO100002")
    _notify(recorder, path="/pay/refund-notify")

    rows = gateway.pay_trade_bill(wx_brand.id, dt.datetime.now(CHINA).date())

    by_key = {(r["out_trade_no"], r["trade_state"]): r for r in rows}
    assert len(rows) == 3
    assert by_key[("SO100001", "SUCCESS")]["transaction_id"] == first
    assert by_key[("SO100001", "SUCCESS")]["amount_fen"] == 2990
    assert by_key[("SO100002", "SUCCESS")]["amount_fen"] == 15000
    refund_row = by_key[("SO100002", "REFUND")]
    assert refund_row["transaction_id"] == second
    assert (refund_row["refund_fen"], refund_row["out_refund_no"]) == (5050, "RF100002")
    assert refund_row["refund_id"] == refund.refund_id
    assert gateway.pay_trade_bill(wx_brand.id, dt.date(2020, 1, 1)) == []


def test_parse_trade_bill_reads_wechats_format():
    bill = (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
        "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
        "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
        "费率备注\r\n"
        "`2026-12-05 10:00:01,`wx1,`1900000109,`0,`,`4200000001,`SO1,`o1,`JSAPI,`SUCCESS,"
        "`OTHERS,`CNY,`1234.56,`0.00,`0,`0,`0.00,`0.00,`,`,`外套,`,`7.41000,`0.60%,`1234.56,"
        "`0.00,`\r\n"
        "`2026-12-05 11:00:00,`wx1,`1900000109,`0,`,`4200000001,`SO1,`o1,`JSAPI,`REFUND,"
        "`OTHERS,`CNY,`0.00,`0.00,`50300001,`RF1,`0.07,`0.00,`ORIGINAL,`SUCCESS,`外套,`,"
        "`-0.00000,`0.60%,`1234.56,`0.07,`\r\n"
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
        "`2,`1234.56,`0.07,`0.00,`7.41000,`1234.56,`0.07\r\n"
    )
    rows = parse_trade_bill(bill)
    assert [(r["trade_state"], r["amount_fen"], r["refund_fen"]) for r in rows] == [
        ("SUCCESS", 123456, 0),
        ("REFUND", 123456, 7),
    ]
    assert rows[1]["out_refund_no"] == "RF1" and rows[0]["out_refund_no"] == "0"


# --- errors ------------------------------------------------------------------------------------


def test_system_error_is_retryable(wx_brand, wx_consumer, recorder):
    paystore.inject_system_error(WX_MCH_ID, times=1)
    with pytest.raises(gateway.RetryableError):
        _prepay(wx_brand, wx_consumer, recorder)
    assert _prepay(wx_brand, wx_consumer, recorder)["package"].startswith("prepay_id=")
    store.inject_fault("/pay/v3/pay/transactions/out-trade-no/SO100001", errcode=-1)
    with pytest.raises(gateway.RetryableError):
        gateway.pay_query(wx_brand.id, "SO100001")
    stats = gateway.call_stats(wx_brand.id)["by_api"]
    assert stats["pay.jsapi"]["errors"] == {"SYSTEM_ERROR": 1}
    assert stats["pay.query"]["errors"] == {"SYSTEM_ERROR": 1}


def test_a_timeout_is_retryable(wx_brand, wx_consumer, recorder, wx_app):
    _prepay(wx_brand, wx_consumer, recorder)
    wx_app.config["WECHAT_TIMEOUT"] = 0.5
    try:
        store.inject_fault("/pay/v3/pay/transactions/out-trade-no/SO100001", delay=1.5)
        with pytest.raises(gateway.RetryableError):
            gateway.pay_query(wx_brand.id, "SO100001")
    finally:
        wx_app.config["WECHAT_TIMEOUT"] = 5


def test_an_answer_not_signed_by_wechat_pay_is_not_trusted(wx_brand, wx_consumer, recorder):
    other = paystore.new_merchant_keys()["public_key"]
    org_services.update_brand_credentials(brand=wx_brand, pay_public_key=other)
    db.session.commit()
    with pytest.raises(gateway.PayError) as raised:
        _prepay(wx_brand, wx_consumer, recorder)
    assert raised.value.code == "ANSWER_NOT_VERIFIED"


def test_a_request_signed_with_another_merchant_key_is_refused(wx_brand, wx_consumer, recorder):
    other = paystore.new_merchant_keys()["private_key"]
    org_services.update_brand_credentials(brand=wx_brand, pay_private_key=other)
    db.session.commit()
    with pytest.raises(gateway.PayError) as raised:
        _prepay(wx_brand, wx_consumer, recorder)
    assert raised.value.code == "SIGN_ERROR" and raised.value.status == 401
    assert paystore.get_order(WX_MCH_ID, "SO100001") is None


# --- merchant settings at rest -----------------------------------------------------------------


def test_merchant_secrets_are_stored_encrypted(wx_brand):
    row = (
        db.session.execute(
            text(
                "SELECT pay_apiv3_key, pay_private_key, pay_public_key, pay_public_key_id, mch_id "
                "FROM brand WHERE id = :id"
            ),
            {"id": wx_brand.id},
        )
        .mappings()
        .one()
    )
    assert WX_APIV3_KEY not in row["pay_apiv3_key"]
    assert "PRIVATE KEY" not in row["pay_private_key"]
    assert merchant_keys()["private_key"].splitlines()[1] not in row["pay_private_key"]
    db.session.expire_all()
    assert wx_brand.pay_apiv3_key == WX_APIV3_KEY
    assert wx_brand.pay_private_key.startswith("-----BEGIN PRIVATE KEY-----")
    # The public key and ids are not secrets: readable as they are.
    assert row["pay_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert row["pay_public_key_id"].startswith("PUB_KEY_ID_") and row["mch_id"] == WX_MCH_ID
