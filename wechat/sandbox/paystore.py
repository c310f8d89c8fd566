"""State and behaviour of the fake WeChat Pay APIv3: its key pair, merchants, orders,
refunds, notifies and the control knobs.

- The sandbox's WeChat Pay key pair (RSA 2048) is generated once per sandbox store (Redis)
  and signs every answer and notify; ``platform_public_key()`` gives the public key and its
  id for a brand's settings.
- A merchant is registered with its APIv3 key, its API certificate's serial number and
  public key (requests must be signed with the matching private key) and its appids.
- Notifies (``wechat.sandbox.paynotify``) are posted to the order's notify_url signed and
  AES-256-GCM encrypted, as WeChat Pay does; how they are delivered is set per merchant or
  per order (``set_delivery``):
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
import time
import uuid
import zoneinfo

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import current_app, has_app_context

from core.redis import get_redis, key
from wechat.sandbox import store

log = logging.getLogger(__name__)

CHINA = zoneinfo.ZoneInfo("Asia/Shanghai")
NOTIFY_TIMEOUT = 5.0
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MODES = ("normal", "delay", "twice", "out_of_order", "wrong_amount", "never")


def _k(*parts: object) -> str:
    return key(None, "sandbox", "pay3", *parts)


key_of = _k


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
    for k in r.scan_iter(_k("short", mch_id or "*")):
        r.delete(k)


def inject_system_error(mch_id: str, times: int = 1) -> None:
    """The merchant's next ``times`` API calls answer HTTP 500 SYSTEM_ERROR."""
    get_redis().incrby(_k("syserr", mch_id), int(times))


_TAKE_ONE = """
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left > 0 then
  redis.call('DECR', KEYS[1])
  return 1
end
return 0
"""


def take_system_error(mch_id: str) -> bool:
    """Whether this call answers an injected SYSTEM_ERROR, taking one if so (in one step: a
    decrement undone afterwards could land around a flush and leave an error behind)."""
    return bool(get_redis().eval(_TAKE_ONE, 1, _k("syserr", mch_id)))


def short_of_funds(mch_id: str, short: bool = True) -> None:
    """The merchant's balance cannot pay refunds: a new refund answers 403 NOT_ENOUGH, as
    WeChat Pay does until the merchant tops the balance up."""
    r = get_redis()
    if short:
        r.set(_k("short", mch_id), 1)
    else:
        r.delete(_k("short", mch_id))


def funds_short(mch_id: str) -> bool:
    return bool(get_redis().get(_k("short", mch_id)))


def refunds_held(mch_id: str) -> bool:
    return bool(get_redis().get(_k("hold_refunds", mch_id)))


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
