"""WeChat Pay v2 through the gateway and the sandbox: order, notify, verification."""

from __future__ import annotations

import pytest
import requests
from wechatpy.pay.utils import calculate_signature

from tests.support.wechat_sandbox import WX_MCH_ID, WX_PAY_KEY
from wechat import gateway
from wechat.sandbox import pay as sandbox_pay
from wechat.sandbox import store


def _order(brand, consumer, recorder, out_trade_no="SO-1001", total_fee=2990):
    return gateway.unified_order(
        brand.id,
        out_trade_no,
        total_fee,
        "Demo 外套",
        consumer["openid"],
        recorder.url + "/pay/notify",
        attach="order:1001",
    )


def test_unified_order_gives_signed_jsapi_parameters(wx_brand, wx_consumer, recorder):
    result = _order(wx_brand, wx_consumer, recorder)

    params = dict(result["jsapi_params"])
    assert params["package"] == f"prepay_id={result['prepay_id']}"
    assert params["appId"] == wx_brand.appid
    sign = params.pop("paySign")
    assert sign == calculate_signature(params, WX_PAY_KEY)
    order = sandbox_pay.get_order(WX_MCH_ID, "SO-1001")
    assert order["total_fee"] == 2990 and order["state"] == "NOTPAY"


def test_paying_posts_a_notify_that_verifies(wx_brand, wx_consumer, recorder):
    recorder.answer = gateway.pay_notify_answer(True)
    _order(wx_brand, wx_consumer, recorder)

    outcome = sandbox_pay.pay_order(WX_MCH_ID, "SO-1001")

    assert outcome["acknowledged"] is True
    [post] = recorder.wait(1)
    assert post["path"] == "/pay/notify"
    data = gateway.verify_pay_notify(
        wx_brand.id, post["body"], expected_total_fee=lambda no: {"SO-1001": 2990}.get(no)
    )
    assert data["out_trade_no"] == "SO-1001"
    assert data["total_fee"] == 2990 and data["openid"] == wx_consumer["openid"]
    assert data["transaction_id"].startswith("42000")
    assert data["attach"] == "order:1001"
    # Paying again is refused by WeChat Pay: ORDERPAID.
    with pytest.raises(gateway.PayError) as raised:
        _order(wx_brand, wx_consumer, recorder)
    assert raised.value.code == "ORDERPAID"


def test_notify_with_the_wrong_amount_is_rejected(wx_brand, wx_consumer, recorder):
    _order(wx_brand, wx_consumer, recorder)
    sandbox_pay.pay_order(WX_MCH_ID, "SO-1001")
    body = recorder.wait(1)[0]["body"]

    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.verify_pay_notify(wx_brand.id, body, expected_total_fee=1)
    assert raised.value.reason == "wrong_amount"
    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.verify_pay_notify(wx_brand.id, body, expected_total_fee=lambda no: None)
    assert raised.value.reason == "unknown_order"
    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.verify_pay_notify(
            wx_brand.id, body, expected_total_fee=2990, out_trade_no="SO-other"
        )
    assert raised.value.reason == "wrong_order"


def test_notify_with_a_bad_signature_is_rejected(wx_brand, wx_consumer, recorder):
    _order(wx_brand, wx_consumer, recorder)
    sandbox_pay.pay_order(WX_MCH_ID, "SO-1001")
    body = recorder.wait(1)[0]["body"]
    # Someone lowers the amount in transit: the signature no longer matches.
    forged = body.replace("<total_fee>2990</total_fee>", "<total_fee>1</total_fee>")
    assert forged != body

    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.verify_pay_notify(wx_brand.id, forged, expected_total_fee=1)
    assert raised.value.reason == "bad_signature"


def test_a_signed_notify_of_a_failed_payment_is_not_success(wx_brand, wx_consumer, recorder):
    _order(wx_brand, wx_consumer, recorder)
    order = sandbox_pay.get_order(WX_MCH_ID, "SO-1001")
    order["transaction_id"] = "4200000001"
    fields = {**sandbox_pay.notify_fields(order), "result_code": "FAIL", "err_code": "NOTENOUGH"}
    body = sandbox_pay.signed_notify_xml(WX_MCH_ID, fields)

    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.verify_pay_notify(wx_brand.id, body, expected_total_fee=2990)
    assert raised.value.reason == "not_success"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not xml",
        "<xml><a>1</a><a>2</a></xml>",
        '<!DOCTYPE x [<!ENTITY e "boom">]><xml><sign>&e;</sign></xml>',
        "<xml>" + "<a>1</a>" * 20000 + "</xml>",
    ],
)
def test_hostile_notify_bodies_are_rejected_cleanly(wx_brand, body):
    with pytest.raises(gateway.PayNotifyError) as raised:
        gateway.verify_pay_notify(wx_brand.id, body, expected_total_fee=1)
    assert raised.value.reason in {"bad_xml", "bad_signature", "too_large"}


def test_same_trade_number_with_another_amount_is_refused(wx_brand, wx_consumer, recorder):
    first = _order(wx_brand, wx_consumer, recorder)
    assert _order(wx_brand, wx_consumer, recorder)["prepay_id"] == first["prepay_id"]
    with pytest.raises(gateway.PayError) as raised:
        _order(wx_brand, wx_consumer, recorder, total_fee=1)
    assert raised.value.code == "INVALID_REQUEST"


def test_a_pay_system_error_is_retryable(wx_brand, wx_consumer, recorder):
    store.inject_fault("/pay/pay/unifiedorder", errcode=-1)
    with pytest.raises(gateway.RetryableError):
        _order(wx_brand, wx_consumer, recorder)
    assert _order(wx_brand, wx_consumer, recorder)["prepay_id"]


def test_pay_endpoint_of_the_sandbox_pays_over_http(wx_brand, wx_consumer, recorder, sandbox_url):
    recorder.answer = gateway.pay_notify_answer(True)
    _order(wx_brand, wx_consumer, recorder)
    res = requests.post(
        sandbox_url + "/_sandbox/pay",
        json={"mch_id": WX_MCH_ID, "out_trade_no": "SO-1001"},
        timeout=10,
    )
    assert res.status_code == 200 and res.json()["acknowledged"] is True
    assert sandbox_pay.get_order(WX_MCH_ID, "SO-1001")["state"] == "SUCCESS"
    assert (
        requests.post(
            sandbox_url + "/_sandbox/pay",
            json={"mch_id": WX_MCH_ID, "out_trade_no": "nope"},
            timeout=10,
        ).status_code
        == 404
    )
