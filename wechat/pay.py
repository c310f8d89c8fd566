"""WeChat Pay APIv3 through the ``wechatpayv3`` SDK: JSAPI / mini-program orders, the
payment and refund notifies, query, close, refunds and the daily trade bill.

One SDK client per brand and process, in the WeChat Pay public-key mode (``public_key`` /
``public_key_id``), so it never fetches platform certificates. The SDK's hard-coded host
(``_core._gate_way``) and its bare ``requests`` calls are replaced in one place,
``_GatewayCore``: requests go to WECHAT_PAY_API_BASE (the sandbox outside production)
through one HTTP session per client, with WECHAT_TIMEOUT, the exact signed bytes as body,
and every answer's Wechatpay-Signature verified against the WeChat Pay public key.

Notifies are in ``wechat.pay_notify``, the trade bill in ``wechat.pay_bill``.

What is verified here and what is the caller's job:
- here: request signatures (SDK), answer signatures, a notify's signature, serial, age,
  decryption, merchant and app (``pay_parse_notify``);
- the shop: that the notify's ``out_trade_no`` is one of its orders and ``amount_total``
  is that order's amount, and applying a notify once per transaction_id / refund_id.

Errors: ``PayError`` (WeChat refused; ``code`` is its JSON ``code``), ``RetryableError``
(SYSTEM_ERROR, FREQUENCY_LIMITED, HTTP 5xx, timeouts, dropped connections),
``NotConfigured`` (the brand has no merchant settings), ``PayNotifyError`` (a notify that
must not be trusted; the answer is 4xx and nothing changes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import requests
from flask import current_app
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core
from wechatpayv3.type import RequestType
from wechatpayv3.utils import build_authorization

from wechat import brand_cache, inprocess
from wechat.client import NotConfigured, RetryableError, WeChatError, load_brand, record_call

REAL_PAY_HOST = "https://api.mch.weixin.qq.com"
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANKERROR"})
OUT_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")


class PayError(WeChatError):
    """WeChat Pay refused the request (``code`` is its JSON ``code``, e.g. ORDERPAID)."""

    def __init__(self, code: str, message: str = "", status: int | None = None):
        super().__init__(f"WeChat Pay error {code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True, slots=True)
class PayState:
    """An order as WeChat Pay knows it (trade_state SUCCESS, NOTPAY, CLOSED, REFUND, ...)."""

    out_trade_no: str
    trade_state: str
    transaction_id: str
    amount_total: int | None
    payer_total: int | None
    success_time: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class RefundState:
    """A refund (status PROCESSING, SUCCESS, ABNORMAL or CLOSED)."""

    out_refund_no: str
    refund_id: str
    status: str
    refund_fen: int
    out_trade_no: str
    transaction_id: str
    success_time: dt.datetime | None


# --- the SDK, aimed at WECHAT_PAY_API_BASE -----------------------------------------------------


class _AnswerNotVerified(Exception):
    """An answer whose Wechatpay-Signature does not verify."""


class _GatewayCore(Core):
    """The SDK's Core sending through one session to ``gate_way``, public-key mode only."""

    def __init__(self, *args: Any, gate_way: str, session: requests.Session, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._gate_way = gate_way.rstrip("/")
        self._session = session

    def _update_certificates(self) -> None:
        # Platform certificates are never fetched: the WeChat Pay public key verifies, and an
        # answer or notify under another serial is refused.
        self._certificates.clear()

    def request(
        self,
        path,
        method=RequestType.GET,
        data=None,
        skip_verify=False,
        sign_data=None,
        files=None,
        cipher_data=False,
        headers=None,
    ):
        if files:
            raise ValueError("this client sends JSON only: WeChat Pay uploads are not used")
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")) if data else ""
        headers = dict(headers or {})
        headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "wmb-wechatpayv3",
                "Wechatpay-Serial": self._public_key_id,
                "Authorization": build_authorization(
                    path, method.value, self._mchid, self._cert_serial_no, self._private_key, body
                ),
            }
        )
        res = self._session.request(
            method.value,
            self._gate_way + path,
            data=body.encode() if body else None,
            headers=headers,
            timeout=self._timeout,
        )
        is_json = "application/json" in res.headers.get("Content-Type", "")
        text = res.content.decode("utf-8", "replace") if is_json else ""
        if 200 <= res.status_code < 300 and not skip_verify:
            try:
                verified = self._verify_signature(res.headers, text)
            except Exception as exc:  # the SDK raises bare Exception / ValueError on odd headers
                raise _AnswerNotVerified(path) from exc
            if not verified:
                raise _AnswerNotVerified(path)
        return res.status_code, text if is_json else res.content


class _Pay(WeChatPay):
    """A WeChatPay client whose Core is ``_GatewayCore``."""

    def __init__(self, *, gate_way: str, session: requests.Session, **kwargs: Any):
        super().__init__(WeChatPayType.JSAPI, **kwargs)
        self._core = _GatewayCore(
            mchid=kwargs["mchid"],
            cert_serial_no=kwargs["cert_serial_no"],
            private_key=kwargs["private_key"],
            apiv3_key=kwargs["apiv3_key"],
            timeout=kwargs["timeout"],
            public_key=kwargs["public_key"],
            public_key_id=kwargs["public_key_id"],
            gate_way=gate_way,
            session=session,
        )


def pay_api_base() -> str:
    return current_app.config["WECHAT_PAY_API_BASE"].rstrip("/")


def _timeout() -> float:
    return float(current_app.config.get("WECHAT_TIMEOUT", 5))


_clients: dict[tuple, _Pay] = {}


def clear_clients() -> None:
    """Forget this process's clients (with the brand cache)."""
    _clients.clear()


brand_cache.on_clear(clear_clients)


def merchant_of(brand_id: int) -> Any:
    brand = load_brand(brand_id)
    needed = (
        brand.mch_id,
        brand.pay_apiv3_key,
        brand.pay_private_key,
        brand.pay_cert_serial_no,
        brand.pay_public_key,
        brand.pay_public_key_id,
    )
    if not all(needed):
        raise NotConfigured(f"brand {brand_id} has no complete WeChat Pay merchant settings")
    return brand


def pay_client(brand_id: int) -> _Pay:
    """The brand's client; a change of any merchant setting makes a new one."""
    brand = merchant_of(brand_id)
    digest = hashlib.sha256(
        "\0".join(
            (
                brand.mch_id,
                brand.pay_apiv3_key,
                brand.pay_private_key,
                brand.pay_cert_serial_no,
                brand.pay_public_key,
                brand.pay_public_key_id,
            )
        ).encode()
    ).hexdigest()
    # in-process clients are bound to one app object (tests build several apps)
    app_id = id(current_app._get_current_object()) if inprocess.enabled() else None  # noqa: SLF001
    cache_key = (brand_id, digest, pay_api_base(), _timeout(), app_id)
    client = _clients.get(cache_key)
    if client is None:
        for stale in [k for k in _clients if k[0] == brand_id]:
            _clients.pop(stale, None)
        session = requests.Session()
        inprocess.aim(session, pay_api_base())
        client = _Pay(
            gate_way=pay_api_base(),
            session=session,
            mchid=brand.mch_id,
            private_key=brand.pay_private_key,
            cert_serial_no=brand.pay_cert_serial_no,
            appid=brand.appid or brand.mp_appid or "",
            apiv3_key=brand.pay_apiv3_key,
            timeout=_timeout(),
            public_key=brand.pay_public_key,
            public_key_id=brand.pay_public_key_id,
        )
        _clients[cache_key] = client
    return client


def send_pay_call(
    brand_id: int, api: str, fn: Callable[[], tuple[int, Any]], *, ok: tuple[int, ...] = (200,)
) -> Any:
    """Run one SDK call, count it and turn its outcome into a result or our exceptions."""
    try:
        status, body = fn()
    except requests.Timeout as exc:
        record_call(brand_id, api, "timeout")
        raise RetryableError(None, f"timed out: {exc}") from exc
    except requests.RequestException as exc:
        record_call(brand_id, api, "network")
        raise RetryableError(None, f"network error: {exc}") from exc
    except _AnswerNotVerified as exc:
        record_call(brand_id, api, "signature")
        raise PayError("ANSWER_NOT_VERIFIED", "the answer's signature does not verify") from exc
    if status in ok:
        record_call(brand_id, api, 0)
        if isinstance(body, str):
            try:
                return json.loads(body) if body else {}
            except ValueError as exc:
                raise PayError("BAD_ANSWER", "the answer is not JSON") from exc
        return body
    try:
        err = json.loads(body) if isinstance(body, str) and body else {}
    except ValueError:
        err = {}
    code = str(err.get("code") or f"HTTP_{status}") if isinstance(err, dict) else f"HTTP_{status}"
    message = str(err.get("message") or "") if isinstance(err, dict) else ""
    record_call(brand_id, api, code)
    if status >= 500 or code in RETRYABLE_CODES:
        raise RetryableError(None, f"WeChat Pay {code}: {message}")
    raise PayError(code, message, status)


# --- orders ------------------------------------------------------------------------------------


def _check_out_no(value: str, name: str) -> None:
    if not isinstance(value, str) or not OUT_NO_RE.match(value):
        raise ValueError(f"{name}: 6-32 letters, digits, _ - | *")


def _check_fen(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} is a positive integer number of fen")


def pay_jsapi_prepay(
    brand_id: int,
    *,
    mini_program: bool,
    openid: str,
    out_trade_no: str,
    description: str,
    amount_fen: int,
    notify_url: str,
    time_expire: dt.datetime,
    attach: str = "",
) -> dict:
    """Place a JSAPI (official account) or mini-program order and return what the page
    passes to WeixinJSBridge getBrandWCPayRequest / wx.requestPayment: appId, timeStamp,
    nonceStr, package (``prepay_id=...``), signType ``RSA`` and paySign (RSA-SHA256 over
    the four values with the merchant key)."""
    _check_out_no(out_trade_no, "out_trade_no")
    _check_fen(amount_fen, "amount_fen")
    if not openid:
        raise ValueError("openid is required")
    if not description or len(description) > 127:
        raise ValueError("description: 1-127 characters")
    if len(attach) > 128:
        raise ValueError("attach: at most 128 characters")
    if time_expire.tzinfo is None:
        raise ValueError("time_expire must carry a time zone")
    brand = merchant_of(brand_id)
    appid = brand.mp_appid if mini_program else brand.appid
    if not appid:
        kind = "mini-program" if mini_program else "official account"
        raise NotConfigured(f"brand {brand_id} has no {kind} appid")
    client = pay_client(brand_id)
    result = send_pay_call(
        brand_id,
        "pay.jsapi",
        lambda: client.pay(
            description=description,
            out_trade_no=out_trade_no,
            amount={"total": amount_fen, "currency": "CNY"},
            payer={"openid": openid},
            time_expire=time_expire.isoformat(timespec="seconds"),
            attach=attach or None,
            notify_url=notify_url,
            appid=appid,
            pay_type=WeChatPayType.MINIPROG if mini_program else WeChatPayType.JSAPI,
        ),
    )
    prepay_id = result.get("prepay_id")
    if not prepay_id:
        raise PayError("BAD_ANSWER", "no prepay_id in the answer")
    params = {
        "appId": appid,
        "timeStamp": str(int(time.time())),
        "nonceStr": secrets.token_hex(16),
        "package": f"prepay_id={prepay_id}",
        "signType": "RSA",
    }
    params["paySign"] = client.sign(
        [params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]
    )
    return params


def parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _state(data: dict, out_trade_no: str) -> PayState:
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    return PayState(
        out_trade_no=str(data.get("out_trade_no") or out_trade_no),
        trade_state=str(data.get("trade_state") or ""),
        transaction_id=str(data.get("transaction_id") or ""),
        amount_total=int_or_none(amount.get("total")),
        payer_total=int_or_none(amount.get("payer_total")),
        success_time=parse_time(data.get("success_time")),
    )


def pay_query(brand_id: int, out_trade_no: str) -> PayState:
    """The order's state at WeChat Pay (NOTPAY while unpaid); an order WeChat does not know
    raises ``PayError("ORDER_NOT_EXIST")``."""
    _check_out_no(out_trade_no, "out_trade_no")
    client = pay_client(brand_id)
    data = send_pay_call(brand_id, "pay.query", lambda: client.query(out_trade_no=out_trade_no))
    return _state(data, out_trade_no)


def pay_close(brand_id: int, out_trade_no: str) -> None:
    """Close an unpaid order so it can no longer be paid. Closing a closed order, or one
    WeChat never saw, is fine; a paid one raises ``PayError("ORDERPAID")``."""
    _check_out_no(out_trade_no, "out_trade_no")
    client = pay_client(brand_id)
    try:
        send_pay_call(brand_id, "pay.close", lambda: client.close(out_trade_no), ok=(200, 204))
    except PayError as exc:
        if exc.code not in ("ORDER_CLOSED", "ORDER_NOT_EXIST"):
            raise


# --- refunds -----------------------------------------------------------------------------------


def _refund(data: dict) -> RefundState:
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    return RefundState(
        out_refund_no=str(data.get("out_refund_no") or ""),
        refund_id=str(data.get("refund_id") or ""),
        status=str(data.get("status") or ""),
        refund_fen=int_or_none(amount.get("refund")) or 0,
        out_trade_no=str(data.get("out_trade_no") or ""),
        transaction_id=str(data.get("transaction_id") or ""),
        success_time=parse_time(data.get("success_time")),
    )


def pay_refund(
    brand_id: int,
    *,
    out_trade_no: str,
    out_refund_no: str,
    refund_fen: int,
    total_fen: int,
    reason: str,
    notify_url: str,
) -> RefundState:
    """Refund ``refund_fen`` of a paid order. Asking again with the same ``out_refund_no``
    and amount returns the same refund (WeChat Pay is idempotent per out_refund_no)."""
    _check_out_no(out_trade_no, "out_trade_no")
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO_RE.match(out_refund_no):
        raise ValueError("out_refund_no: 1-64 letters, digits, _ - | * @")
    _check_fen(refund_fen, "refund_fen")
    _check_fen(total_fen, "total_fen")
    if refund_fen > total_fen:
        raise ValueError("refund_fen is more than total_fen")
    client = pay_client(brand_id)
    data = send_pay_call(
        brand_id,
        "pay.refund",
        lambda: client.refund(
            out_refund_no=out_refund_no,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            out_trade_no=out_trade_no,
            reason=(reason or "")[:80] or None,
            notify_url=notify_url,
        ),
    )
    return _refund(data)


def pay_refund_query(brand_id: int, out_refund_no: str) -> RefundState:
    """A refund's state; an unknown one raises ``PayError("RESOURCE_NOT_EXISTS")``."""
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO_RE.match(out_refund_no):
        raise ValueError("out_refund_no: 1-64 letters, digits, _ - | * @")
    client = pay_client(brand_id)
    data = send_pay_call(brand_id, "pay.refund_query", lambda: client.query_refund(out_refund_no))
    return _refund(data)


# --- merchant transfers to a user's WeChat balance (商家转账) ------------------------------------

OUT_BILL_NO_RE = re.compile(r"^[0-9A-Za-z]{5,32}$")
# Scene 1005 (佣金报酬: commission and pay to salespeople) requires these two report lines
# and shows the receiver one of its perceptions.
COMMISSION_SCENE_ID = "1005"
COMMISSION_PERCEPTION = "劳务报酬"
TRANSFER_FINAL = ("SUCCESS", "FAIL", "CANCELLED")


@dataclasses.dataclass(frozen=True, slots=True)
class TransferState:
    """A transfer bill: ACCEPTED, PROCESSING, WAIT_USER_CONFIRM (the receiver must confirm
    with ``package_info``), TRANSFERING, SUCCESS, FAIL, CANCELING or CANCELLED."""

    out_bill_no: str
    transfer_bill_no: str
    state: str
    package_info: str
    amount_fen: int | None
    fail_reason: str


def _transfer(data: dict, out_bill_no: str) -> TransferState:
    return TransferState(
        out_bill_no=str(data.get("out_bill_no") or out_bill_no),
        transfer_bill_no=str(data.get("transfer_bill_no") or ""),
        state=str(data.get("state") or ""),
        package_info=str(data.get("package_info") or ""),
        amount_fen=int_or_none(data.get("transfer_amount")),
        fail_reason=str(data.get("fail_reason") or ""),
    )


def pay_transfer_bill(
    brand_id: int,
    *,
    out_bill_no: str,
    openid: str,
    amount_fen: int,
    remark: str,
    report_infos: list[dict],
    scene_id: str = COMMISSION_SCENE_ID,
    perception: str = COMMISSION_PERCEPTION,
    notify_url: str | None = None,
) -> TransferState:
    """Transfer ``amount_fen`` to the user's WeChat balance (APIv3 ``transfer-bills``).

    Asking again with the same ``out_bill_no`` returns the same bill (WeChat Pay is
    idempotent per out_bill_no), so a retry after a timeout is safe."""
    if not isinstance(out_bill_no, str) or not OUT_BILL_NO_RE.match(out_bill_no):
        raise ValueError("out_bill_no: 5-32 letters and digits")
    _check_fen(amount_fen, "amount_fen")
    if not openid:
        raise ValueError("openid is required")
    if not report_infos or not all(
        isinstance(i, dict) and i.get("info_type") and i.get("info_content") for i in report_infos
    ):
        raise ValueError("transfer_scene_report_infos: info_type and info_content each")
    client = pay_client(brand_id)
    data = send_pay_call(
        brand_id,
        "pay.transfer",
        lambda: client.mch_transfer_bills(
            out_bill_no=out_bill_no,
            transfer_scene_id=scene_id,
            openid=openid,
            transfer_amount=amount_fen,
            transfer_remark=(remark or "")[:32],
            user_recv_perception=perception,
            transfer_scene_report_infos=report_infos,
            notify_url=notify_url,
        ),
    )
    return _transfer(data, out_bill_no)


def pay_transfer_query(brand_id: int, out_bill_no: str) -> TransferState:
    """A transfer bill's state; an unknown one raises ``PayError("NOT_FOUND")``."""
    if not isinstance(out_bill_no, str) or not OUT_BILL_NO_RE.match(out_bill_no):
        raise ValueError("out_bill_no: 5-32 letters and digits")
    client = pay_client(brand_id)
    data = send_pay_call(
        brand_id,
        "pay.transfer_query",
        lambda: client.mch_transfer_bills_query(out_bill_no=out_bill_no),
    )
    return _transfer(data, out_bill_no)
