"""State and behaviour of the fake WeChat Pay APIv3: its key pair, merchants, orders,
refunds, notifies and the control knobs.

- The sandbox's WeChat Pay key pair (RSA 2048) is generated once per sandbox store (Redis)
  and signs every answer and notify; ``platform_public_key()`` gives the public key and its
  id for a brand's settings.
- A merchant is registered with its APIv3 key, its API certificate's serial number and
  public key (requests must be signed with the matching private key) and its appids.
- Notifies are posted to the order's notify_url signed and AES-256-GCM encrypted, as WeChat
  Pay does; how they are delivered is set per merchant or per order (``set_delivery``):
  ``normal``, ``delay`` (seconds later), ``twice``, ``out_of_order`` (the payment's notify
  waits until a refund's has gone), ``wrong_amount``, ``never`` (paid, no notify: the shop
  must query). ``inject_system_error`` makes the next calls answer SYSTEM_ERROR.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
import zoneinfo

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app, has_app_context

from core.redis import get_redis, key
from wechat import inprocess
from wechat.sandbox import store

log = logging.getLogger(__name__)

CHINA = zoneinfo.ZoneInfo("Asia/Shanghai")
NOTIFY_TIMEOUT = 5.0
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MODES = ("normal", "delay", "twice", "out_of_order", "wrong_amount", "never")


def _k(*parts: object) -> str:
    return key(None, "sandbox", "pay3", *parts)


def now_rfc3339() -> str:
    return dt.datetime.now(CHINA).isoformat(timespec="seconds")


# --- the sandbox's WeChat Pay key pair ---------------------------------------------------------

_KEYS: dict[str, tuple] = {}


def _platform() -> tuple[rsa.RSAPrivateKey, str, str]:
    """(private key, public key PEM, public key id), created once per sandbox store."""
    r = get_redis()
    raw = r.get(_k("platform_key"))
    if raw is None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        key_id = "PUB_KEY_ID_" + secrets.token_hex(16).upper()
        r.set(_k("platform_key"), json.dumps({"private": pem, "id": key_id}), nx=True)
        raw = r.get(_k("platform_key"))
    data = json.loads(raw)
    cached = _KEYS.get(data["id"])
    if cached is None:
        private = serialization.load_pem_private_key(data["private"].encode(), password=None)
        public = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        cached = _KEYS[data["id"]] = (private, public, data["id"])
    return cached


def platform_public_key() -> dict:
    """The WeChat Pay public key a brand registers: ``{"public_key", "public_key_id"}``."""
    _, public, key_id = _platform()
    return {"public_key": public, "public_key_id": key_id}


def platform_sign(message: str) -> str:
    private, _, _ = _platform()
    return base64.b64encode(
        private.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()


def signed_headers(
    body: str, *, timestamp: int | None = None, serial: str | None = None
) -> dict[str, str]:
    """The Wechatpay-* headers WeChat Pay puts on an answer or notify with this body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16)
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": platform_sign(f"{ts}\n{nonce}\n{body}\n"),
        "Wechatpay-Serial": serial or _platform()[2],
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        "Request-ID": uuid.uuid4().hex,
    }


# --- merchants ---------------------------------------------------------------------------------


def register_merchant(
    mch_id: str,
    *,
    apiv3_key: str,
    cert_serial_no: str,
    merchant_public_key: str,
    appids: list[str] | tuple[str, ...],
) -> dict:
    """Create or replace a merchant of the sandbox (what WeChat Pay knows of it)."""
    merchant = {
        "mch_id": mch_id,
        "apiv3_key": apiv3_key,
        "cert_serial_no": cert_serial_no.upper(),
        "public_key": merchant_public_key,
        "appids": [a for a in appids if a],
    }
    get_redis().hset(_k("merchants"), mch_id, json.dumps(merchant))
    return merchant


def public_key_of(private_pem: str) -> str:
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def get_merchant(mch_id: str | None) -> dict | None:
    """The merchant ``mch_id``; inside the app seeded from a brand with these settings."""
    if not mch_id:
        return None
    raw = get_redis().hget(_k("merchants"), mch_id)
    if raw:
        return json.loads(raw)
    return _seed_from_brand(mch_id)


def _seed_from_brand(mch_id: str) -> dict | None:
    if not has_app_context() or not current_app.config.get("SANDBOX_SEED_FROM_BRANDS", True):
        return None
    if "sqlalchemy" not in current_app.extensions:
        return None
    from sqlalchemy import select

    from core.db import db
    from org.models import Brand

    try:
        brand = db.session.execute(
            select(Brand).where(Brand.mch_id == mch_id).limit(1)
        ).scalar_one_or_none()
    except Exception:  # the sandbox must answer even when the app's database is not set up
        log.warning("sandbox could not read brands", exc_info=True)
        db.session.rollback()
        return None
    if brand is None or not (
        brand.pay_apiv3_key and brand.pay_private_key and brand.pay_cert_serial_no
    ):
        return None
    return register_merchant(
        mch_id,
        apiv3_key=brand.pay_apiv3_key,
        cert_serial_no=brand.pay_cert_serial_no,
        merchant_public_key=public_key_of(brand.pay_private_key),
        appids=[brand.appid or "", brand.mp_appid or ""],
    )


def new_merchant_keys() -> dict:
    """A fresh merchant key pair as a merchant downloads it: ``{private_key, public_key,
    cert_serial_no}`` (PEM; the serial is 40 hex digits like WeChat's)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "private_key": pem,
        "public_key": public_key_of(pem),
        "cert_serial_no": secrets.token_hex(20).upper(),
    }


# --- orders and refunds ------------------------------------------------------------------------


def get_order(mch_id: str, out_trade_no: str) -> dict | None:
    return store.get_doc("pay3_order", mch_id, out_trade_no)


def put_order(order: dict) -> None:
    store.put_doc("pay3_order", order["mchid"], order["out_trade_no"], order)


def order_by_prepay(prepay_id: str) -> dict | None:
    raw = get_redis().hget(_k("prepay"), prepay_id)
    if not raw:
        return None
    mch_id, _, out_trade_no = (raw.decode() if isinstance(raw, bytes) else raw).partition("|")
    return get_order(mch_id, out_trade_no)


def remember_prepay(prepay_id: str, mch_id: str, out_trade_no: str) -> None:
    get_redis().hset(_k("prepay"), prepay_id, f"{mch_id}|{out_trade_no}")


def get_refund(mch_id: str, out_refund_no: str) -> dict | None:
    return store.get_doc("pay3_refund", mch_id, out_refund_no)


def put_refund(refund: dict) -> None:
    store.put_doc("pay3_refund", refund["mchid"], refund["out_refund_no"], refund)


@contextlib.contextmanager
def order_lock(mch_id: str, out_trade_no: str, timeout: float = 5.0):
    """Hold the order's lock (Redis) while deciding on one of its refunds."""
    r = get_redis()
    k = _k("lock", mch_id, out_trade_no)
    owner = secrets.token_hex(8)
    deadline = time.monotonic() + timeout
    while not r.set(k, owner, nx=True, px=int(timeout * 1000)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"order {out_trade_no} stays locked")
        time.sleep(0.005)
    try:
        yield
    finally:
        if r.get(k) in (owner, owner.encode()):
            r.delete(k)


def reserve_refund(mch_id: str, out_trade_no: str, fen: int, total: int) -> bool:
    """Add ``fen`` to what the order has refunded unless that exceeds ``total`` (atomic)."""
    r = get_redis()
    k = _k("refunded", mch_id, out_trade_no)
    if int(r.incrby(k, fen)) > total:
        r.decrby(k, fen)
        return False
    return True


def release_refund(mch_id: str, out_trade_no: str, fen: int) -> None:
    get_redis().decrby(_k("refunded", mch_id, out_trade_no), fen)


def refunds_of(mch_id: str) -> list[dict]:
    return list(store.list_docs("pay3_refund", mch_id).values())


def orders_of(mch_id: str) -> list[dict]:
    return list(store.list_docs("pay3_order", mch_id).values())


# --- control knobs -----------------------------------------------------------------------------


def set_delivery(
    mch_id: str,
    mode: str = "normal",
    *,
    out_trade_no: str | None = None,
    delay: float = 0.0,
    amount: int | None = None,
) -> dict:
    """How notifies of the merchant (or of one order) are delivered from now on."""
    if mode not in MODES:
        raise ValueError(f"mode is one of {', '.join(MODES)}")
    if not 0 <= float(delay) <= 600:
        raise ValueError("delay: 0-600 seconds")
    spec = {"mode": mode, "delay": float(delay), "amount": amount}
    name = out_trade_no or "*"
    get_redis().hset(_k("delivery", mch_id), name, json.dumps(spec))
    return spec


def delivery_for(mch_id: str, out_trade_no: str) -> dict:
    r = get_redis()
    raw = r.hget(_k("delivery", mch_id), out_trade_no) or r.hget(_k("delivery", mch_id), "*")
    return json.loads(raw) if raw else {"mode": "normal", "delay": 0.0, "amount": None}


def clear_controls(mch_id: str | None = None) -> None:
    """Back to normal delivery and no injected errors (one merchant, or all)."""
    r = get_redis()
    pattern = _k("delivery", mch_id or "*")
    for k in r.scan_iter(pattern):
        r.delete(k)
    for k in r.scan_iter(_k("syserr", mch_id or "*")):
        r.delete(k)


def inject_system_error(mch_id: str, times: int = 1) -> None:
    """The merchant's next ``times`` API calls answer HTTP 500 SYSTEM_ERROR."""
    get_redis().incrby(_k("syserr", mch_id), int(times))


def take_system_error(mch_id: str) -> bool:
    r = get_redis()
    k = _k("syserr", mch_id)
    left = r.decr(k)
    if left < 0:
        r.incr(k)
        return False
    return True


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
        "success_time": refund.get("success_time") or now_rfc3339(),
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
        "create_time": now_rfc3339(),
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
    headers = {**(headers or signed_headers(body)), "Content-Type": "application/json"}
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
    r.rpush(_k("deliveries", mch_id, out_trade_no), json.dumps(entry, ensure_ascii=False))
    r.expire(_k("deliveries", mch_id, out_trade_no), 7 * 86400)


def deliveries(mch_id: str, out_trade_no: str) -> list[dict]:
    """Every notify posted for the order, in order: kind, notify_id, status, acknowledged."""
    raw = get_redis().lrange(_k("deliveries", mch_id, out_trade_no), 0, -1)
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
    return _k("held", mch_id, out_trade_no)


def notify_payment(order: dict) -> list[dict]:
    """Deliver the payment notify of a paid order the way its delivery mode says; the
    answers of what was posted now (a delayed or held notify is posted later)."""
    merchant = get_merchant(order["mchid"])
    spec = delivery_for(order["mchid"], order["out_trade_no"])
    mode = spec["mode"]
    if mode == "never":
        return []
    amount = spec.get("amount")
    if mode == "wrong_amount" and amount is None:
        amount = order["total"] - 1 if order["total"] > 1 else order["total"] + 1
    notify_id = str(uuid.uuid4())
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
    order = get_order(mch_id, out_trade_no)
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
    order = get_order(mch_id, out_trade_no)
    if order is None or order["trade_state"] not in ("SUCCESS", "REFUND"):
        raise LookupError(f"no paid order {out_trade_no}")
    merchant = get_merchant(mch_id)
    notify_id = order.get("notify_id") or str(uuid.uuid4())
    body = build_notify(
        merchant["apiv3_key"], transaction_resource(order), kind="transaction", notify_id=notify_id
    )
    return [_send(order, "transaction", body, notify_id, order["notify_url"]) for _ in range(times)]


def notify_refund(refund: dict) -> dict | None:
    """Post the refund's notify, then any payment notify held back for its order."""
    merchant = get_merchant(refund["mchid"])
    order = get_order(refund["mchid"], refund["out_trade_no"])
    if order is None or not refund.get("notify_url"):
        return None
    spec = delivery_for(refund["mchid"], refund["out_trade_no"])
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
    order = get_order(mch_id, out_trade_no)
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
    if not get_redis().set(_k("paid", mch_id, out_trade_no), 1, nx=True, ex=30 * 86400):
        raise PayRefused("ORDERPAID")
    order.update(
        trade_state="SUCCESS",
        transaction_id="4200" + str(store.next_id("pay3_tx")).rjust(24, "0"),
        success_time=now_rfc3339(),
    )
    put_order(order)
    return {"order": order, "notifies": notify_payment(order)}


def verify_pay_sign(order: dict, params: dict) -> str | None:
    """Why the page's pay parameters do not pay ``order`` (None: they do)."""
    merchant = get_merchant(order["mchid"])
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
    refund = get_refund(mch_id, out_refund_no)
    if refund is None:
        raise LookupError(f"unknown refund {out_refund_no}")
    if refund["status"] != "PROCESSING":
        return refund
    refund.update(status=status, success_time=now_rfc3339())
    put_refund(refund)
    if status == "SUCCESS":
        order = get_order(mch_id, refund["out_trade_no"])
        if order is not None:
            order["trade_state"] = "REFUND"
            put_order(order)
    else:
        release_refund(mch_id, refund["out_trade_no"], refund["refund"])
    notify_refund(refund)
    return refund


def complete_refund_later(mch_id: str, out_refund_no: str, delay: float) -> None:
    if get_redis().get(_k("hold_refunds", mch_id)):
        return
    _later(lambda: complete_refund(mch_id, out_refund_no), delay)


def hold_refunds(mch_id: str, hold: bool = True) -> None:
    """Keep the merchant's new refunds PROCESSING until ``complete_refund`` is called."""
    r = get_redis()
    if hold:
        r.set(_k("hold_refunds", mch_id), 1)
    else:
        r.delete(_k("hold_refunds", mch_id))


# --- the trade bill ----------------------------------------------------------------------------

BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _day_of(rfc3339: str | None) -> dt.date | None:
    if not rfc3339:
        return None
    return dt.datetime.fromisoformat(rfc3339).astimezone(CHINA).date()


def trade_bill(mch_id: str, bill_date: dt.date) -> str:
    """The merchant's trade bill (ALL) of a China day in WeChat's CSV format."""
    lines = [BILL_HEADER]
    paid = refunded = fees = 0
    count = 0
    rows = []
    for order in orders_of(mch_id):
        if order.get("transaction_id") and _day_of(order.get("success_time")) == bill_date:
            rows.append((order["success_time"], order, None))
    for refund in refunds_of(mch_id):
        if refund["status"] == "SUCCESS" and _day_of(refund.get("success_time")) == bill_date:
            order = get_order(mch_id, refund["out_trade_no"])
            if order is not None:
                rows.append((refund["success_time"], order, refund))
    for at, order, refund in sorted(rows, key=lambda row: row[0]):
        when = dt.datetime.fromisoformat(at).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        fee = order["total"] * 6 // 1000
        cells = [
            when,
            order["appid"],
            mch_id,
            "0",
            "",
            order["transaction_id"],
            order["out_trade_no"],
            order["openid"],
            order.get("trade_type", "JSAPI"),
            "REFUND" if refund else "SUCCESS",
            "OTHERS",
            "CNY",
            _yuan(0 if refund else order["total"]),
            "0.00",
            refund["refund_id"] if refund else "0",
            refund["out_refund_no"] if refund else "0",
            _yuan(refund["refund"]) if refund else "0.00",
            "0.00",
            "ORIGINAL" if refund else "",
            "SUCCESS" if refund else "",
            order["description"].replace(",", " "),
            (order.get("attach") or "").replace(",", " "),
            _yuan(-fee if refund else fee),
            "0.60%",
            _yuan(order["total"]),
            _yuan(refund["refund"]) if refund else "0.00",
            "",
        ]
        lines.append(",".join("`" + c for c in cells))
        count += 1
        if refund:
            refunded += refund["refund"]
        else:
            paid += order["total"]
            fees += fee
    lines.append(
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
    )
    lines.append(
        ",".join(
            "`" + c
            for c in (
                str(count),
                _yuan(paid),
                _yuan(refunded),
                "0.00",
                _yuan(fees),
                _yuan(paid),
                _yuan(refunded),
            )
        )
    )
    return "\r\n".join(lines) + "\r\n"


def keep_bill(raw: bytes) -> str:
    """Keep a generated bill for download for 30 s; its token."""
    token = secrets.token_urlsafe(16)
    get_redis().set(_k("bill", token), raw, ex=30)
    return token


def take_bill(token: str) -> bytes | None:
    raw = get_redis().get(_k("bill", token))
    return raw if isinstance(raw, bytes) or raw is None else raw.encode()


def sha1_hex(raw: bytes) -> str:
    return hashlib.sha1(raw).hexdigest()  # noqa: S324 - the hash WeChat Pay uses for bills
