"""Fake WeChat Pay v2 (api.mch.weixin.qq.com): unified order, order query, and the notify.

Requests and answers are XML signed with the merchant's API key (MD5), as in v2. Paying an
order (``pay_order``, or POST /sandbox/wechat/_sandbox/pay) posts the signed notify to the
order's ``notify_url`` the way WeChat Pay does.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time

import requests
import xmltodict
from flask import Response, request
from wechatpy.pay.utils import calculate_signature, dict_to_xml

from wechat.sandbox import accounts, store
from wechat.sandbox.api import bp

NOTIFY_TIMEOUT = 5.0
_REQUIRED = (
    "appid",
    "mch_id",
    "nonce_str",
    "sign",
    "body",
    "out_trade_no",
    "total_fee",
    "spbill_create_ip",
    "notify_url",
    "trade_type",
)


def _xml(fields: dict, key: str | None = None) -> Response:
    fields = {k: v for k, v in fields.items() if v is not None}
    sign = calculate_signature(fields, key) if key else None
    return Response(dict_to_xml(fields, sign), mimetype="text/xml")


def fault_xml(code: str) -> Response:
    """An injected failure, as WeChat Pay reports a system error."""
    return _xml(
        {
            "return_code": "SUCCESS",
            "return_msg": "OK",
            "result_code": "FAIL",
            "err_code": "SYSTEMERROR" if code in ("-1", "SYSTEMERROR") else code,
            "err_code_des": "sandbox fault",
        }
    )


def _fail(msg: str) -> Response:
    return _xml({"return_code": "FAIL", "return_msg": msg})


def _signed_request() -> tuple[dict | None, dict | None, Response | None]:
    try:
        data = dict(xmltodict.parse(request.get_data(as_text=True))["xml"])
    except Exception:  # any broken body gets WeChat Pay's answer, never a 500
        return None, None, _fail("XML format error")
    account = accounts.account_by_mch(data.get("mch_id"))
    if account is None or not account.get("pay_key"):
        return None, None, _fail("mch_id not found")
    sign = data.pop("sign", None)
    if data.get("sign_type", "MD5") != "MD5" or sign != calculate_signature(
        data, account["pay_key"]
    ):
        return None, None, _fail("signature error")
    return data, account, None


def _order_key(mch_id: str) -> str:
    return f"mch:{mch_id}"


@bp.post("/pay/pay/unifiedorder")
def unifiedorder():
    data, account, failure = _signed_request()
    if failure:
        return failure
    missing = [f for f in _REQUIRED if f != "sign" and not data.get(f)]
    if missing:
        return _fail(f"missing {missing[0]}")
    if data["trade_type"] == "JSAPI" and not data.get("openid"):
        return _fail("openid is required for JSAPI")
    if accounts.get_account(data["appid"]) is None:
        return _fail("appid not found")
    mch_id = data["mch_id"]
    base = {
        "return_code": "SUCCESS",
        "return_msg": "OK",
        "appid": data["appid"],
        "mch_id": mch_id,
        "nonce_str": secrets.token_hex(16),
    }
    existing = store.get_doc("pay_order", _order_key(mch_id), data["out_trade_no"])
    if existing:
        if existing["state"] == "SUCCESS":
            return _xml(
                {
                    **base,
                    "result_code": "FAIL",
                    "err_code": "ORDERPAID",
                    "err_code_des": "order paid",
                },
                account["pay_key"],
            )
        if int(existing["total_fee"]) != int(data["total_fee"]):
            return _xml(
                {
                    **base,
                    "result_code": "FAIL",
                    "err_code": "INVALID_REQUEST",
                    "err_code_des": "out_trade_no used with other parameters",
                },
                account["pay_key"],
            )
        prepay_id = existing["prepay_id"]
    else:
        prepay_id = "wx" + dt.datetime.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)
        store.put_doc(
            "pay_order",
            _order_key(mch_id),
            data["out_trade_no"],
            {
                "appid": data["appid"],
                "mch_id": mch_id,
                "out_trade_no": data["out_trade_no"],
                "total_fee": int(data["total_fee"]),
                "body": data["body"],
                "notify_url": data["notify_url"],
                "openid": data.get("openid"),
                "trade_type": data["trade_type"],
                "attach": data.get("attach"),
                "prepay_id": prepay_id,
                "state": "NOTPAY",
                "transaction_id": None,
            },
        )
    return _xml(
        {
            **base,
            "result_code": "SUCCESS",
            "prepay_id": prepay_id,
            "trade_type": data["trade_type"],
        },
        account["pay_key"],
    )


@bp.post("/pay/pay/orderquery")
def orderquery():
    data, account, failure = _signed_request()
    if failure:
        return failure
    order = store.get_doc("pay_order", _order_key(data["mch_id"]), data.get("out_trade_no", ""))
    base = {
        "return_code": "SUCCESS",
        "return_msg": "OK",
        "appid": data.get("appid"),
        "mch_id": data["mch_id"],
        "nonce_str": secrets.token_hex(16),
    }
    if order is None:
        return _xml(
            {**base, "result_code": "FAIL", "err_code": "ORDERNOTEXIST"}, account["pay_key"]
        )
    return _xml(
        {
            **base,
            "result_code": "SUCCESS",
            "trade_state": order["state"],
            "out_trade_no": order["out_trade_no"],
            "total_fee": order["total_fee"],
            "transaction_id": order["transaction_id"],
            "openid": order["openid"],
        },
        account["pay_key"],
    )


def notify_fields(order: dict, *, total_fee: int | None = None) -> dict:
    """The fields of the notify for a paid order (``total_fee`` overrides, for tests)."""
    fee = order["total_fee"] if total_fee is None else total_fee
    return {
        "appid": order["appid"],
        "mch_id": order["mch_id"],
        "nonce_str": secrets.token_hex(16),
        "result_code": "SUCCESS",
        "return_code": "SUCCESS",
        "openid": order.get("openid") or "",
        "is_subscribe": "Y",
        "trade_type": order["trade_type"],
        "bank_type": "CFT",
        "total_fee": fee,
        "cash_fee": fee,
        "fee_type": "CNY",
        "transaction_id": order["transaction_id"],
        "out_trade_no": order["out_trade_no"],
        "attach": order.get("attach"),
        "time_end": time.strftime("%Y%m%d%H%M%S"),
    }


def signed_notify_xml(mch_id: str, fields: dict) -> str:
    """Notify XML signed with the merchant key, as WeChat Pay sends it."""
    account = accounts.account_by_mch(mch_id)
    fields = {k: v for k, v in fields.items() if v is not None}
    return dict_to_xml(fields, calculate_signature(fields, account["pay_key"]))


def pay_order(mch_id: str, out_trade_no: str) -> dict:
    """The consumer pays: mark the order paid and post the notify to its notify_url.

    Returns ``{"status", "body", "acknowledged"}`` of the app's answer; posting again
    (WeChat retries until acknowledged) sends the same transaction once more.
    """
    order = store.get_doc("pay_order", _order_key(mch_id), out_trade_no)
    if order is None:
        raise LookupError(f"unknown order {out_trade_no}")
    if order["state"] != "SUCCESS":
        order.update(
            state="SUCCESS", transaction_id="42000" + str(store.next_id("pay_tx")).rjust(23, "0")
        )
        store.put_doc("pay_order", _order_key(mch_id), out_trade_no, order)
    body = signed_notify_xml(mch_id, notify_fields(order))
    res = requests.post(
        order["notify_url"],
        data=body.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=NOTIFY_TIMEOUT,
    )
    acknowledged = False
    try:
        answer = xmltodict.parse(res.text)["xml"]
        acknowledged = res.status_code == 200 and answer.get("return_code") == "SUCCESS"
    except Exception:  # noqa: S110 - an unparsable answer simply is not an acknowledgement
        pass
    if acknowledged:
        order["notified"] = True
        store.put_doc("pay_order", _order_key(mch_id), out_trade_no, order)
    return {"status": res.status_code, "body": res.text, "acknowledged": acknowledged}


def get_order(mch_id: str, out_trade_no: str) -> dict | None:
    return store.get_doc("pay_order", _order_key(mch_id), out_trade_no)
