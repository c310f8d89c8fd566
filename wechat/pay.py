"""WeChat Pay v2 through the gateway: unified order and a fully verified payment notify.

wechatpy's ``parse_payment_result`` checks only the MD5 signature; ``verify_pay_notify``
also checks return_code, result_code, the merchant, the order and the amount. Making the
notify idempotent (one effect per transaction_id) is the caller's job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from flask import current_app
from wechatpy.exceptions import InvalidSignatureException, WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import dict_to_xml

from wechat import inprocess
from wechat.client import (
    NotConfigured,
    RetryableError,
    WeChatError,
    load_brand,
    record_call,
    timeout,
)

MAX_NOTIFY_BYTES = 64 * 1024
RETRYABLE_PAY_CODES = frozenset({"SYSTEMERROR", "BIZERR_NEED_RETRY", "FREQUENCY_LIMITED"})


class PayError(WeChatError):
    """WeChat Pay refused the request (``code`` is its err_code or return_msg)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"WeChat Pay error {code}: {message}")
        self.code = code
        self.message = message


class PayNotifyError(WeChatError):
    """A payment notify that must not be trusted; ``reason`` says why."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class _Pay(WeChatPay):
    """WeChatPay aimed at WECHAT_PAY_API_BASE."""

    def __init__(self, *args: Any, base: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.API_BASE_URL = base.rstrip("/") + "/"
        inprocess.aim(self._http, base)


def _pay_client(brand_id: int, *, mini_program: bool) -> _Pay:
    brand = load_brand(brand_id)
    appid = brand.mp_appid if mini_program else brand.appid
    if not (appid and brand.mch_id and brand.pay_key):
        raise NotConfigured(f"brand {brand_id} has no WeChat Pay merchant or appid")
    return _Pay(
        appid,
        brand.pay_key,
        brand.mch_id,
        timeout=timeout(),
        base=current_app.config["WECHAT_PAY_API_BASE"],
    )


def unified_order(
    brand_id: int,
    out_trade_no: str,
    total_fee: int,
    body: str,
    openid: str,
    notify_url: str,
    *,
    client_ip: str = "127.0.0.1",
    attach: str | None = None,
    mini_program: bool = False,
    trade_type: str = "JSAPI",
) -> dict:
    """Place an order with WeChat Pay: ``{prepay_id, jsapi_params}`` for wx.requestPayment."""
    if not isinstance(total_fee, int) or total_fee <= 0:
        raise ValueError("total_fee is a positive integer number of fen")
    pay = _pay_client(brand_id, mini_program=mini_program)
    try:
        # client_ip is always passed: without it wechatpy looks up a public IP over the network.
        result = pay.order.create(
            trade_type,
            body,
            total_fee,
            notify_url,
            client_ip=client_ip,
            user_id=openid,
            out_trade_no=out_trade_no,
            attach=attach,
        )
    except WeChatPayException as exc:
        code = exc.errcode or exc.return_code or "FAIL"
        record_call(brand_id, "pay.unifiedorder", code)
        if exc.return_code is None or code in RETRYABLE_PAY_CODES:
            raise RetryableError(None, f"WeChat Pay {code}") from exc
        raise PayError(str(code), str(exc.errmsg or getattr(exc, "return_msg", "") or "")) from exc
    except requests.Timeout as exc:
        record_call(brand_id, "pay.unifiedorder", "timeout")
        raise RetryableError(None, f"timed out: {exc}") from exc
    except requests.RequestException as exc:
        record_call(brand_id, "pay.unifiedorder", "network")
        raise RetryableError(None, f"network error: {exc}") from exc
    if not isinstance(result, dict):
        record_call(brand_id, "pay.unifiedorder", "http")
        raise RetryableError(None, "WeChat Pay answered something that is not XML")
    record_call(brand_id, "pay.unifiedorder", 0)
    prepay_id = result["prepay_id"]
    return {"prepay_id": prepay_id, "jsapi_params": pay.jsapi.get_jsapi_params(prepay_id)}


def verify_pay_notify(
    brand_id: int,
    xml_body: bytes | str,
    *,
    expected_total_fee: int | Callable[[str], int | None],
    out_trade_no: str | None = None,
) -> dict:
    """Check a payment notify completely and return its fields (total_fee as int).

    ``expected_total_fee`` is the order's amount in fen, or a function from out_trade_no to
    it (None: no such order). Raises ``PayNotifyError`` with reason ``too_large``,
    ``bad_xml``, ``bad_signature``, ``not_success``, ``wrong_merchant``, ``wrong_order``,
    ``unknown_order`` or ``wrong_amount``.
    """
    if isinstance(xml_body, str):
        xml_body = xml_body.encode()
    if len(xml_body) > MAX_NOTIFY_BYTES:
        raise PayNotifyError("too_large")
    brand = load_brand(brand_id)
    if not (brand.mch_id and brand.pay_key):
        raise NotConfigured(f"brand {brand_id} has no WeChat Pay merchant")
    pay = WeChatPay(brand.appid or "", brand.pay_key, brand.mch_id)
    try:
        data = pay.parse_payment_result(xml_body.decode("utf-8"))
    except InvalidSignatureException as exc:
        raise PayNotifyError("bad_signature") from exc
    except Exception as exc:  # hostile XML raises ExpatError, ValueError, AttributeError ...
        raise PayNotifyError("bad_xml", f"{type(exc).__name__}") from exc
    if data.get("return_code") != "SUCCESS" or data.get("result_code") != "SUCCESS":
        raise PayNotifyError("not_success", str(data.get("err_code") or data.get("return_msg")))
    if data.get("mch_id") != brand.mch_id or data.get("appid") not in (brand.appid, brand.mp_appid):
        raise PayNotifyError("wrong_merchant")
    trade_no = data.get("out_trade_no") or ""
    if out_trade_no is not None and trade_no != out_trade_no:
        raise PayNotifyError("wrong_order")
    expected = expected_total_fee(trade_no) if callable(expected_total_fee) else expected_total_fee
    if expected is None:
        raise PayNotifyError("unknown_order")
    if data.get("total_fee") != int(expected):
        raise PayNotifyError(
            "wrong_amount", f"paid {data.get('total_fee')} fen, order is {expected} fen"
        )
    return data


def pay_notify_answer(ok: bool, message: str = "OK") -> str:
    """The XML body to answer a notify with (WeChat Pay retries until it gets SUCCESS)."""
    return dict_to_xml({"return_code": "SUCCESS" if ok else "FAIL", "return_msg": message})
