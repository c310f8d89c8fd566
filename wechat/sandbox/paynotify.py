"""Notifies of the fake WeChat Pay and what makes them: the consumer paying
(``pay_order``, after ``verify_pay_sign`` checked the page's paySign), refunds completing,
and WeChat's retries (``redeliver``). Each notify is built as WeChat Pay builds it (an
AES-256-GCM encrypted resource, signed with the sandbox's WeChat Pay key) and delivered the
way ``paystore.set_delivery`` says; ``deliveries`` lists what was posted and the answers.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
import threading
import time
import uuid

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app, has_app_context

from core.redis import get_redis
from wechat import inprocess
from wechat.sandbox import paystore, store

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT = 5.0


# --- notifies ----------------------------------------------------------------------------------


def encrypt_resource(apiv3_key: str, plaintext: str, associated_data: str) -> dict:
    """A notify's ``resource``: AES-256-GCM with the APIv3 key, as WeChat Pay encrypts it."""
    nonce = secrets.token_hex(6)
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext.encode(), associated_data.encode()
    )
    return {
        "original_type": associated_data,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def transaction_resource(order: dict, *, amount: int | None = None) -> dict:
    total = order["total"] if amount is None else amount
    return {
        "mchid": order["mchid"],
        "appid": order["appid"],
        "out_trade_no": order["out_trade_no"],
        "transaction_id": order["transaction_id"],
        "trade_type": order.get("trade_type", "JSAPI"),
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": order.get("attach") or "",
        "success_time": order["success_time"],
        "payer": {"openid": order["openid"]},
        "amount": {
            "total": total,
            "payer_total": total,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }


def refund_resource(refund: dict) -> dict:
    return {
        "mchid": refund["mchid"],
        "out_trade_no": refund["out_trade_no"],
        "transaction_id": refund["transaction_id"],
        "out_refund_no": refund["out_refund_no"],
        "refund_id": refund["refund_id"],
        "refund_status": refund["status"],
        "success_time": refund.get("success_time") or paystore.now_rfc3339(),
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": refund["total"],
            "refund": refund["refund"],
            "payer_total": refund["total"],
            "payer_refund": refund["refund"],
        },
    }


def build_notify(apiv3_key: str, resource: dict, *, kind: str, notify_id: str | None = None) -> str:
    """The JSON body of a notify carrying ``resource`` (``kind`` transaction or refund)."""
    event, summary = (
        ("TRANSACTION.SUCCESS", "支付成功")
        if kind == "transaction"
        else (f"REFUND.{resource.get('refund_status', 'SUCCESS')}", "退款状态变更")
    )
    envelope = {
        "id": notify_id or str(uuid.uuid4()),
        "create_time": paystore.now_rfc3339(),
        "resource_type": "encrypt-resource",
        "event_type": event,
        "summary": summary,
        "resource": encrypt_resource(apiv3_key, json.dumps(resource, ensure_ascii=False), kind),
    }
    return json.dumps(envelope, ensure_ascii=False)


def _session_for(url: str) -> requests.Session:
    session = requests.Session()
    if has_app_context() and inprocess.enabled():
        public = current_app.config.get("PUBLIC_URL", "").rstrip("/")
        if public and url.startswith(public + "/"):
            inprocess.aim(session, public)
    return session


def post_notify(url: str, body: str, headers: dict | None = None) -> dict:
    """POST a notify (signed now unless ``headers`` are given); the app's answer."""
    headers = {**(headers or paystore.signed_headers(body)), "Content-Type": "application/json"}
    try:
        res = _session_for(url).post(
            url, data=body.encode(), headers=headers, timeout=NOTIFY_TIMEOUT
        )
    except requests.RequestException as exc:
        return {"status": None, "body": str(exc), "acknowledged": False}
    return {
        "status": res.status_code,
        "body": res.text,
        "acknowledged": 200 <= res.status_code < 300,
    }


def _log_delivery(mch_id: str, out_trade_no: str, entry: dict) -> None:
    r = get_redis()
    r.rpush(
        paystore.key_of("deliveries", mch_id, out_trade_no), json.dumps(entry, ensure_ascii=False)
    )
    r.expire(paystore.key_of("deliveries", mch_id, out_trade_no), 7 * 86400)


def deliveries(mch_id: str, out_trade_no: str) -> list[dict]:
    """Every notify posted for the order, in order: kind, notify_id, status, acknowledged."""
    raw = get_redis().lrange(paystore.key_of("deliveries", mch_id, out_trade_no), 0, -1)
    return [json.loads(v) for v in raw]


def _send(order: dict, kind: str, body: str, notify_id: str, url: str) -> dict:
    result = post_notify(url, body)
    entry = {"kind": kind, "notify_id": notify_id, "at": time.time(), **result}
    entry.pop("body", None)
    _log_delivery(order["mchid"], order["out_trade_no"], entry)
    return result


def _later(fn, delay: float) -> None:
    app = current_app._get_current_object()  # noqa: SLF001

    def run() -> None:
        time.sleep(delay)
        with app.app_context():
            try:
                fn()
            except Exception:
                log.exception("sandbox notify failed")

    threading.Thread(target=run, name="sandbox-pay-notify", daemon=True).start()


def _held_key(mch_id: str, out_trade_no: str) -> str:
    return paystore.key_of("held", mch_id, out_trade_no)


def notify_payment(order: dict) -> list[dict]:
    """Deliver the payment notify of a paid order the way its delivery mode says; the
    answers of what was posted now (a delayed or held notify is posted later)."""
    merchant = paystore.get_merchant(order["mchid"])
    spec = paystore.delivery_for(order["mchid"], order["out_trade_no"])
    mode = spec["mode"]
    if mode == "never":
        return []
    amount = spec.get("amount")
    if mode == "wrong_amount" and amount is None:
        amount = order["total"] - 1 if order["total"] > 1 else order["total"] + 1
    # WeChat's retries of a notify carry its id: ``redeliver`` sends this one again.
    notify_id = order.get("notify_id") or str(uuid.uuid4())
    if order.get("notify_id") != notify_id:
        order["notify_id"] = notify_id
        paystore.put_order(order)
    resource = transaction_resource(order, amount=amount if mode == "wrong_amount" else None)
    body = build_notify(merchant["apiv3_key"], resource, kind="transaction", notify_id=notify_id)
    url = order["notify_url"]
    if mode == "out_of_order":
        get_redis().rpush(_held_key(order["mchid"], order["out_trade_no"]), body)
        return []
    if mode == "delay":
        _later(lambda: _send(order, "transaction", body, notify_id, url), spec["delay"])
        return []
    results = [_send(order, "transaction", body, notify_id, url)]
    if mode == "twice":
        results.append(_send(order, "transaction", body, notify_id, url))
    return results


def release_held(mch_id: str, out_trade_no: str) -> list[dict]:
    """Post the notifies held back for the order (out-of-order delivery), oldest first."""
    order = paystore.get_order(mch_id, out_trade_no)
    r = get_redis()
    results = []
    while order is not None:
        body = r.lpop(_held_key(mch_id, out_trade_no))
        if body is None:
            break
        body = body.decode() if isinstance(body, bytes) else body
        notify_id = json.loads(body)["id"]
        results.append(_send(order, "transaction", body, notify_id, order["notify_url"]))
    return results


def redeliver(mch_id: str, out_trade_no: str, *, times: int = 1) -> list[dict]:
    """Post the paid order's payment notify again ``times`` times (WeChat's retries)."""
    order = paystore.get_order(mch_id, out_trade_no)
    if order is None or order["trade_state"] not in ("SUCCESS", "REFUND"):
        raise LookupError(f"no paid order {out_trade_no}")
    merchant = paystore.get_merchant(mch_id)
    notify_id = order.get("notify_id") or str(uuid.uuid4())
    body = build_notify(
        merchant["apiv3_key"], transaction_resource(order), kind="transaction", notify_id=notify_id
    )
    return [_send(order, "transaction", body, notify_id, order["notify_url"]) for _ in range(times)]


def notify_refund(refund: dict) -> dict | None:
    """Post the refund's notify, then any payment notify held back for its order."""
    merchant = paystore.get_merchant(refund["mchid"])
    order = paystore.get_order(refund["mchid"], refund["out_trade_no"])
    if order is None or not refund.get("notify_url"):
        return None
    spec = paystore.delivery_for(refund["mchid"], refund["out_trade_no"])
    if spec["mode"] == "never":
        return None
    notify_id = str(uuid.uuid4())
    body = build_notify(
        merchant["apiv3_key"], refund_resource(refund), kind="refund", notify_id=notify_id
    )
    result = _send(order, "refund", body, notify_id, refund["notify_url"])
    release_held(refund["mchid"], refund["out_trade_no"])
    return result


# --- the consumer pays; refunds complete ------------------------------------------------------


class PayRefused(Exception):
    """The phone cannot pay this (``reason``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def pay_order(mch_id: str, out_trade_no: str) -> dict:
    """The consumer pays the order: it becomes SUCCESS and its notify goes out as the
    delivery mode says. Returns ``{"order", "notifies"}`` (the answers of what was posted)."""
    order = paystore.get_order(mch_id, out_trade_no)
    if order is None:
        raise LookupError(f"unknown order {out_trade_no}")
    if order["trade_state"] == "CLOSED":
        raise PayRefused("ORDER_CLOSED")
    if order["trade_state"] != "NOTPAY":
        raise PayRefused("ORDERPAID")
    expire = order.get("time_expire")
    if expire and dt.datetime.fromisoformat(expire) < dt.datetime.now(dt.UTC):
        raise PayRefused("ORDER_EXPIRED")
    # One payment per order even when the phone taps twice.
    if not get_redis().set(
        paystore.key_of("paid", mch_id, out_trade_no), 1, nx=True, ex=30 * 86400
    ):
        raise PayRefused("ORDERPAID")
    order.update(
        trade_state="SUCCESS",
        transaction_id="4200" + str(store.next_id("pay3_tx")).rjust(24, "0"),
        success_time=paystore.now_rfc3339(),
    )
    paystore.put_order(order)
    return {"order": order, "notifies": notify_payment(order)}


def verify_pay_sign(order: dict, params: dict) -> str | None:
    """Why the page's pay parameters do not pay ``order`` (None: they do)."""
    merchant = paystore.get_merchant(order["mchid"])
    if merchant is None:
        return "unknown merchant"
    if params.get("appId") != order["appid"]:
        return "appId does not match the order"
    if params.get("signType") != "RSA":
        return "signType must be RSA"
    fields = [str(params.get(n) or "") for n in ("appId", "timeStamp", "nonceStr", "package")]
    if not all(fields):
        return "missing parameters"
    try:
        public = serialization.load_pem_public_key(merchant["public_key"].encode())
        public.verify(
            base64.b64decode(str(params.get("paySign") or ""), validate=True),
            ("\n".join(fields) + "\n").encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except Exception:  # a bad base64 or a signature that does not verify alike
        return "paySign does not verify"
    return None


def complete_refund(mch_id: str, out_refund_no: str, status: str = "SUCCESS") -> dict:
    """Finish a refund (SUCCESS, ABNORMAL or CLOSED) and post its notify."""
    refund = paystore.get_refund(mch_id, out_refund_no)
    if refund is None:
        raise LookupError(f"unknown refund {out_refund_no}")
    if refund["status"] != "PROCESSING":
        return refund
    refund.update(status=status, success_time=paystore.now_rfc3339())
    paystore.put_refund(refund)
    if status == "SUCCESS":
        order = paystore.get_order(mch_id, refund["out_trade_no"])
        if order is not None:
            order["trade_state"] = "REFUND"
            paystore.put_order(order)
    else:
        paystore.release_refund(mch_id, refund["out_trade_no"], refund["refund"])
    notify_refund(refund)
    return refund


def complete_refund_later(mch_id: str, out_refund_no: str, delay: float) -> None:
    if paystore.refunds_held(mch_id):
        return
    _later(lambda: complete_refund(mch_id, out_refund_no), delay)
