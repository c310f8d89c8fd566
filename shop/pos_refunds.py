"""The till's refunds: ``POST /api/pos/<brand_slug>/orders/<pos_order_no>/refunds`` with the
store's POS key (coupons' per-store keys). The money goes back at the till, so no WeChat Pay
call; the refund succeeds at once and everything that follows a refund (points, coupons,
stock for returned units, the member's refund, facts, ``order_refunded``) happens in the
same transaction. The same ``idempotency_key`` posted again answers the same refund.

Body: ``{"idempotency_key": "...", "reason": "...", "restock": true,
"lines": [{"sku_code": "..." | "line_id": 1, "quantity": 1, "amount_fen": 100?}]}``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.db import db
from core.errors import NotFound, ValidationError
from core.tenancy import use_brand
from coupons.pos_api import _body, authenticate_key, pos_brand
from shop import refunds
from shop.models import TILL, Order, OrderLine, Refund, RefundLine

bp = Blueprint("shop_pos_refunds", __name__, url_prefix="/api/pos")
MAX_LINES = 200


def _items(order: Order, raw) -> list[refunds.Item]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_LINES:
        raise ValidationError(_l("A list of lines is required."), field="lines")
    lines = list(db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)))
    by_code = {ln.sku_code: ln for ln in lines if ln.sku_code}
    by_id = {ln.id: ln for ln in lines}
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ValidationError(_l("A JSON object is expected."), field=f"lines.{i}")
        line = None
        if entry.get("line_id") is not None:
            line = (
                by_id.get(entry.get("line_id")) if isinstance(entry.get("line_id"), int) else None
            )
        elif entry.get("sku_code") is not None:
            line = by_code.get(str(entry.get("sku_code")))
        if line is None:
            raise NotFound(_l("No such line on this order."), field=f"lines.{i}")
        qty = entry.get("quantity", 0)
        amount = entry.get("amount_fen")
        items.append(refunds.Item(order_line_id=line.id, quantity=qty, amount_fen=amount))
    return items


def _json(refund: Refund) -> dict:
    rls = db.session.scalars(select(RefundLine).where(RefundLine.refund_id == refund.id))
    return {
        "refund_no": refund.out_refund_no,
        "status": refund.status,
        "amount_fen": refund.amount_fen,
        "points_returned": refund.points_returned,
        "points_reversed": refund.points_reversed,
        "lines": [
            {"line_id": rl.order_line_id, "quantity": rl.quantity, "amount_fen": rl.amount_fen}
            for rl in rls
        ],
    }


@bp.post("/<brand_slug>/orders/<pos_order_no>/refunds")
def refund(brand_slug: str, pos_order_no: str):
    brand = pos_brand(brand_slug)
    with use_brand(brand.id):
        key = authenticate_key()
        data = _body()
        idem = str(data.get("idempotency_key") or "").strip()
        if not idem or len(idem) > 100:
            raise ValidationError(
                _l("An idempotency key of 1-100 characters is required."), field="idempotency_key"
            )
        order = db.session.execute(
            select(Order).where(
                Order.pos_order_no == pos_order_no[:64],
                Order.channel == TILL,
                Order.store_id == key.store_id,
            )
        ).scalar_one_or_none()
        if order is None:  # unknown, or another store's order: the same answer
            raise NotFound(_l("No such order."), field="pos_order_no")
        restock = data.get("restock", True)
        if not isinstance(restock, bool):
            raise ValidationError(_l("true or false is expected."), field="restock")
        done = refunds.start(
            order_id=order.id,
            items=_items(order, data.get("lines")),
            reason=str(data.get("reason") or "")[:200],
            restock=restock,
            operator=f"pos:{key.id}",
            idempotency_key=f"pos:{key.store_id}:{idem}",
        )
        db.session.flush()
        db.session.refresh(done)
        out = _json(done)
        db.session.commit()
    return jsonify(out), 201
