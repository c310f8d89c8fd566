"""The POS API: a till checks, redeems and rolls back coupons with its store's API key.

``Authorization: Bearer <key>``; keys are created in the console, shown once, and kept only
as SHA-256 hashes. Every answer is JSON; repeated calls with the same ``idempotency_key``
have one effect.
"""

from __future__ import annotations

import hashlib
import secrets

from flask import Blueprint, abort, jsonify, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.db import db, utcnow
from core.errors import Forbidden, NotFound, ValidationError
from core.tenancy import use_brand
from coupons import redemption
from coupons.models import PosKey
from wechat import brand_cache

bp = Blueprint("coupons_pos", __name__, url_prefix="/api/pos")
KEY_PREFIX = "wmbpos_"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_key(*, store_id: int, label: str = "") -> tuple[PosKey, str]:
    """A new key for a store; returns (row, the raw key to show once)."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    row = PosKey(store_id=store_id, label=(label or "")[:80], prefix=raw[:12], key_hash=_hash(raw))
    db.session.add(row)
    db.session.flush()
    return row, raw


def revoke_key(*, key_id: int) -> PosKey:
    """Stop a key of the current brand from working (NotFound for any other id)."""
    row = db.session.execute(select(PosKey).where(PosKey.id == key_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(_l("No such key."), field="revoke")
    row.active = False
    db.session.flush()
    return row


def authenticate_key() -> PosKey:
    """The current brand's active POS key of the request's bearer token (403 otherwise)."""
    header = request.headers.get("Authorization", "")
    raw = header[7:].strip() if header.lower().startswith("bearer ") else ""
    row = None
    if raw:
        row = db.session.execute(
            select(PosKey).where(PosKey.key_hash == _hash(raw))
        ).scalar_one_or_none()
    if row is None or not row.active:
        raise Forbidden(_l("Invalid API key."), code="invalid_api_key")
    row.last_used_at = utcnow()
    return row


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError(_l("A JSON object is expected."))
    return data


def _str_list(value, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ValidationError(_l("A list is expected."), field=field)
    return [str(v) for v in value]


def pos_brand(slug: str) -> brand_cache.BrandKeys:
    """The active brand of a POS request's URL, found as member requests find it (the
    process's brand cache, its marker checked in Redis), so the rules the request applies
    come from the process's settings cache too; 404 for an unknown or inactive brand."""
    brand = brand_cache.current(slug)
    if brand is None:
        abort(404)
    return brand


def _redemption_json(red) -> dict:
    return {
        "redemption_id": red.id,
        "coupon_id": red.coupon_id,
        "order_id": red.order_id,
        "order_amount_fen": red.order_amount_fen,
        "discount_fen": red.discount_fen,
        "status": red.status,
        "store_id": red.store_id,
    }


@bp.post("/<brand_slug>/coupons/redeem")
def redeem(brand_slug: str):
    brand = pos_brand(brand_slug)
    with use_brand(brand.id):
        key = authenticate_key()
        data = _body()
        red = redemption.redeem(
            code=str(data.get("code") or ""),
            store_id=key.store_id,
            order_id=str(data.get("order_id") or ""),
            order_amount_fen=data.get("order_amount_fen"),
            idempotency_key=f"pos:{key.store_id}:{data.get('idempotency_key') or ''}",
            channel="pos",
            categories=_str_list(data.get("categories"), "categories"),
            product_ids=_str_list(data.get("product_ids"), "product_ids"),
            guess_ident=f"pos:{key.id}",
        )
        out = _redemption_json(red)
        db.session.commit()
    return jsonify(out)


@bp.post("/<brand_slug>/coupons/check")
def check(brand_slug: str):
    """What the coupon would take off this order, without redeeming it."""
    brand = pos_brand(brand_slug)
    with use_brand(brand.id):
        key = authenticate_key()
        data = _body()
        amount = redemption.check_amount(data.get("order_amount_fen"))
        coupon = redemption.find(code=str(data.get("code") or ""), guess_ident=f"pos:{key.id}")
        from coupons.models import CouponTemplate

        tpl = db.session.get(CouponTemplate, coupon.template_id)
        discount = redemption.check_usable(
            coupon,
            tpl,
            store_id=key.store_id,
            amount_fen=amount,
            categories=_str_list(data.get("categories"), "categories"),
            product_ids=_str_list(data.get("product_ids"), "product_ids"),
            now=utcnow(),
        )
        out = {"ok": True, "discount_fen": discount, "name": tpl.name, "kind": tpl.kind}
        db.session.commit()
    return jsonify(out)


@bp.post("/<brand_slug>/orders/reverse")
def reverse(brand_slug: str):
    """The order was cancelled or refunded: give its coupons back (repeatable)."""
    brand = pos_brand(brand_slug)
    with use_brand(brand.id):
        key = authenticate_key()
        data = _body()
        order_id = str(data.get("order_id") or "").strip()
        if not order_id:
            raise ValidationError(_l("An order number is required."), field="order_id")
        reds = redemption.reverse(
            store_id=key.store_id, order_id=order_id, reason=str(data.get("reason") or "refund")
        )
        out = {"reversed": [r.coupon_id for r in reds]}
        db.session.commit()
    return jsonify(out)
