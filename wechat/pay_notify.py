"""WeChat Pay APIv3 notifies: ``pay_parse_notify`` verifies and decrypts a payment or refund
notify into a ``PayNotice``; ``pay_notify_answer`` is what to answer WeChat Pay."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Mapping

from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify

from wechat.client import WeChatError
from wechat.pay import int_or_none, merchant_of, parse_time

MAX_NOTIFY_BYTES = 64 * 1024
NOTIFY_MAX_AGE = 300  # seconds: an older (or future) Wechatpay-Timestamp is a replay
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


class PayNotifyError(WeChatError):
    """A notify that must not be trusted; ``reason`` says why (``too_large``,
    ``missing_headers``, ``wrong_signature_type``, ``wrong_serial``, ``stale_timestamp``,
    ``bad_signature``, ``bad_json``, ``not_encrypted``, ``bad_ciphertext``, ``bad_resource``,
    ``unknown_event``, ``wrong_merchant``, ``wrong_app``)."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class PayNotice:
    """A verified, decrypted notify. ``kind`` is ``transaction`` or ``refund``."""

    kind: str
    event_type: str
    notify_id: str
    mchid: str
    out_trade_no: str
    transaction_id: str
    trade_state: str  # SUCCESS ... for a transaction; "" for a refund
    amount_total: int
    payer_total: int | None
    appid: str  # "" for a refund (WeChat does not send it there)
    openid: str
    success_time: dt.datetime | None
    attach: str = ""
    out_refund_no: str = ""
    refund_id: str = ""
    refund_status: str = ""  # SUCCESS, CLOSED, ABNORMAL for a refund
    refund_fen: int = 0


def _notice(resource: dict, envelope: dict, kind: str) -> PayNotice:
    amount = resource.get("amount")
    payer = resource.get("payer") if isinstance(resource.get("payer"), dict) else {}
    if not isinstance(amount, dict):
        raise PayNotifyError("bad_resource", "no amount")
    total = int_or_none(amount.get("total"))
    if total is None or total < 0:
        raise PayNotifyError("bad_resource", "amount.total is not an integer")
    refund = int_or_none(amount.get("refund"))
    if kind == "refund" and (refund is None or refund <= 0):
        raise PayNotifyError("bad_resource", "amount.refund is not a positive integer")
    fields = {
        name: resource.get(name)
        for name in ("mchid", "out_trade_no", "transaction_id", "appid", "attach")
    }
    if not all(isinstance(fields[n], str) and fields[n] for n in ("mchid", "out_trade_no")):
        raise PayNotifyError("bad_resource", "no mchid or out_trade_no")
    if kind == "refund" and not (resource.get("out_refund_no") and resource.get("refund_id")):
        raise PayNotifyError("bad_resource", "no out_refund_no or refund_id")
    return PayNotice(
        kind=kind,
        event_type=str(envelope.get("event_type") or ""),
        notify_id=str(envelope.get("id") or ""),
        mchid=fields["mchid"],
        out_trade_no=fields["out_trade_no"],
        transaction_id=str(fields["transaction_id"] or ""),
        trade_state=str(resource.get("trade_state") or "") if kind == "transaction" else "",
        amount_total=total,
        payer_total=int_or_none(amount.get("payer_total")),
        appid=str(fields["appid"] or ""),
        openid=str(payer.get("openid") or ""),
        success_time=parse_time(resource.get("success_time")),
        attach=str(fields["attach"] or ""),
        out_refund_no=str(resource.get("out_refund_no") or ""),
        refund_id=str(resource.get("refund_id") or ""),
        refund_status=str(resource.get("refund_status") or ""),
        refund_fen=refund or 0,
    )


def pay_parse_notify(brand_id: int, headers: Mapping[str, str], body: bytes) -> PayNotice:
    """Verify and decrypt a payment or refund notify of the brand's merchant.

    Checked here: the body's size, Wechatpay-Signature over ``timestamp\\nnonce\\nbody\\n``
    against the WeChat Pay public key, Wechatpay-Serial equal to the configured public key
    id, Wechatpay-Timestamp within 5 minutes (an older notify is a replay), AES-256-GCM
    decryption with the APIv3 key, ``mchid`` equal to the brand's, and for payments
    ``appid`` in (the official account's, the mini-program's).

    NOT checked here, and the caller's job: that ``out_trade_no`` is one of its orders,
    that ``amount_total`` is that order's amount (refuse and change nothing otherwise), and
    applying each transaction_id / refund_id once (WeChat sends a notify late, twice, or
    a refund's before the payment's). Any failure raises ``PayNotifyError(reason)``; answer
    it with ``pay_notify_answer(False, ...)``.
    """
    if not isinstance(body, bytes | bytearray):
        raise PayNotifyError("bad_json", "the body must be bytes")
    if len(body) > MAX_NOTIFY_BYTES:
        raise PayNotifyError("too_large")
    brand = merchant_of(brand_id)
    h = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    signature = h.get("wechatpay-signature", "")
    timestamp = h.get("wechatpay-timestamp", "")
    nonce = h.get("wechatpay-nonce", "")
    serial = h.get("wechatpay-serial", "")
    if not (signature and timestamp and nonce and serial):
        raise PayNotifyError("missing_headers")
    sig_type = h.get("wechatpay-signature-type", SIGNATURE_TYPE)
    if sig_type != SIGNATURE_TYPE:
        raise PayNotifyError("wrong_signature_type", sig_type[:40])
    if serial != brand.pay_public_key_id:
        raise PayNotifyError("wrong_serial", f"serial {serial[:64]}")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > NOTIFY_MAX_AGE:
        raise PayNotifyError("stale_timestamp", f"timestamp {timestamp[:20]}")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayNotifyError("bad_signature", "the body is not UTF-8") from exc
    if not rsa_verify(timestamp, nonce, text, signature, load_public_key(brand.pay_public_key)):
        raise PayNotifyError("bad_signature")
    try:
        envelope = json.loads(text)
    except ValueError as exc:
        raise PayNotifyError("bad_json") from exc
    if not isinstance(envelope, dict):
        raise PayNotifyError("bad_json", "not an object")
    resource = envelope.get("resource")
    if envelope.get("resource_type") != "encrypt-resource" or not isinstance(resource, dict):
        raise PayNotifyError("not_encrypted")
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise PayNotifyError("not_encrypted", "unknown algorithm")
    parts = [resource.get(n) for n in ("nonce", "ciphertext", "associated_data")]
    if not all(isinstance(p, str) for p in parts[:2]) or not isinstance(parts[2], str | None):
        raise PayNotifyError("bad_resource")
    try:
        plain = aes_decrypt(parts[0], parts[1], parts[2] or "", brand.pay_apiv3_key)
    except (ValueError, TypeError) as exc:  # bad base64, a nonce of the wrong length
        raise PayNotifyError("bad_ciphertext", type(exc).__name__) from exc
    if plain is None:
        raise PayNotifyError("bad_ciphertext")
    try:
        data = json.loads(plain)
    except ValueError as exc:
        raise PayNotifyError("bad_resource", "decrypted resource is not JSON") from exc
    if not isinstance(data, dict):
        raise PayNotifyError("bad_resource")
    event = str(envelope.get("event_type") or "")
    original = resource.get("original_type")
    if event.startswith("TRANSACTION.") and original in (None, "transaction"):
        kind = "transaction"
    elif event.startswith("REFUND.") and original in (None, "refund"):
        kind = "refund"
    else:
        raise PayNotifyError("unknown_event", event[:40])
    notice = _notice(data, envelope, kind)
    if notice.mchid != brand.mch_id:
        raise PayNotifyError("wrong_merchant", f"mchid {notice.mchid[:32]}")
    if kind == "transaction" and (
        not notice.appid or notice.appid not in {brand.appid, brand.mp_appid} - {None, ""}
    ):
        raise PayNotifyError("wrong_app", f"appid {notice.appid[:32]}")
    return notice


def pay_notify_answer(ok: bool, message: str = "", *, status: int = 400) -> tuple[str, int]:
    """The answer to a notify: 204 with no body on success; otherwise
    ``{"code": "FAIL", "message": ...}`` with ``status`` (4xx refused, 5xx try again)."""
    if ok:
        return "", 204
    if not 400 <= status <= 599:
        raise ValueError("a failure answers 4xx or 5xx")
    return json.dumps({"code": "FAIL", "message": message or "FAIL"}, ensure_ascii=False), status
