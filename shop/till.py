"""Till orders: a store's POS sends a sale it has already been paid for.

``POST /api/pos/<brand_slug>/orders`` with the store's POS key (coupons' per-store keys):
lines (a SKU code of the catalog, or a free line with a name), the amount collected, the
member by till code or phone, the guide at the till, coupons redeemed with the order, the
till's idempotency key and its own order number. The order is created paid and completed
(channel till, in store), takes its catalog stock through the stock ledger (refused when
short), earns points, records the purchase and the facts, and sends ``order_paid`` and
``order_completed``.

One order per idempotency key: the same sale posted again (even concurrently: an advisory
lock on the key) answers the first order; the same key with other content is a 409, and from
another store's key a 403.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select, text, update

from core.api import api_operation
from core.db import db, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationError
from core.tenancy import require_brand_id, use_brand
from core.validators import is_mobile, normalize_phone
from coupons import redemption
from coupons.models import PosKey
from coupons.pos_api import authenticate_key, pos_brand
from members.models import ACTIVE, Member
from members.tillcode import verify_till_code
from org.models import Staff
from shop import numbers, payments, pricing, signals, stock
from shop.checkout import lock_member
from shop.models import COMPLETED, IN_STORE, TILL, Category, Order, OrderLine, Product, Sku

bp = Blueprint("shop_till", __name__, url_prefix="/api/pos")
MAX_LINES = 200
MAX_FEN = 10**9
KEY_TOUCH = dt.timedelta(minutes=1)


class TillLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku_code: str | None = Field(None, min_length=1, max_length=60, description="Catalog SKU")
    name: str | None = Field(None, min_length=1, max_length=120, description="Free line name")
    unit_price_fen: int = Field(ge=0, le=MAX_FEN, description="Price charged per unit, fen")
    quantity: int = Field(ge=1, le=9999)


class TillMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    till_code: str | None = Field(None, max_length=32, description="The member's till code")
    phone: str | None = Field(None, max_length=32, description="Or the member's mobile")


class TillOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=100)
    pos_order_no: str = Field(min_length=1, max_length=64, description="The till's number")
    lines: list[TillLine] = Field(min_length=1, max_length=MAX_LINES)
    pay_fen: int = Field(ge=0, le=MAX_FEN, description="What the till collected, fen")
    member: TillMember | None = None
    guide_phone: str | None = Field(None, max_length=32, description="Staff at the till")
    coupons: list[str] = Field(default_factory=list, max_length=5)
    paid_at: dt.datetime | None = None


class TillOrderOut(BaseModel):
    order_no: str
    pos_order_no: str
    created: bool = Field(description="False: the same order posted again")
    goods_fen: int
    discount_fen: int
    pay_fen: int
    member_id: int | None
    points_earned: int


def _member_id(data: TillMember | None) -> int | None:
    """The id of the member the till names (by till code or phone), not yet checked."""
    if data is None or not (data.till_code or data.phone):
        return None
    if data.till_code:
        member_id = verify_till_code(data.till_code)
    else:
        phone = normalize_phone(data.phone)
        if not is_mobile(phone):
            raise ValidationError(_l("Enter a mobile number."), field="member.phone")
        member_id = db.session.execute(
            select(Member.id).where(Member.phone == phone, Member.status == ACTIVE)
        ).scalar()
        if member_id is None:
            raise NotFound(_l("No member with this mobile number."), field="member.phone")
    return member_id


def _active_member(member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.status != ACTIVE:
        raise NotFound(_l("Unknown member."), field="member")
    return member


def _guide(phone: str | None, store_id: int) -> int | None:
    if not phone:
        return None
    staff = db.session.execute(
        select(Staff).where(Staff.phone == normalize_phone(phone), Staff.active)
    ).scalar_one_or_none()
    if staff is None or staff.store_id != store_id:
        raise ValidationError(
            _l("No staff member of this store has this number."), field="guide_phone"
        )
    return staff.id


def _same(order: Order, data: TillOrderIn, member_id: int | None) -> bool:
    lines = db.session.execute(
        select(OrderLine.sku_code, OrderLine.name, OrderLine.unit_price_fen, OrderLine.quantity)
        .where(OrderLine.order_id == order.id)
        .order_by(OrderLine.id)
    ).all()
    if len(lines) != len(data.lines):
        return False
    for (code, name, price, qty), want in zip(lines, data.lines, strict=True):
        if (code or None) != want.sku_code or price != want.unit_price_fen or qty != want.quantity:
            return False
        if want.name is not None and not want.sku_code and name != want.name:
            return False
    return (
        order.pos_order_no == data.pos_order_no
        and order.pay_fen == data.pay_fen
        and (member_id is None or order.member_id == member_id)
    )


def create_order(*, store_id: int, data: TillOrderIn, key_id: int) -> tuple[Order, bool]:
    """The till's paid order (see the module's text); the caller commits."""
    key = f"till:{data.idempotency_key.strip()}"
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"shop-till:{require_brand_id()}:{key}"},
    )
    existing = db.session.execute(
        select(Order).where(Order.idempotency_key == key)
    ).scalar_one_or_none()
    member_id = None
    if existing is not None:
        if existing.store_id != store_id:
            raise Forbidden(
                _l("This order belongs to another store."),
                field="idempotency_key",
                code="other_store",
            )
        if data.member and data.member.phone:
            member_id = _active_member(_member_id(data.member)).id
        if not _same(existing, data, member_id):
            raise Conflict(
                _l("This idempotency key was already used for another order."),
                field="idempotency_key",
                code="idempotency_conflict",
            )
        return existing, False
    member_id = _member_id(data.member)
    member = None
    if member_id is not None:
        # One member's orders from several tills at once take the member's rows (points,
        # purchase activity, tier) in turn, as the online checkout does; the member is read
        # once that is so, and kept for the whole order (the points, the purchase activity,
        # the tier and the tags each find it in the session instead of reading it again).
        lock_member(member_id)
        member = _active_member(member_id)
    guide_id = _guide(data.guide_phone, store_id)
    now = utcnow()
    paid_at = data.paid_at or now
    if paid_at.tzinfo is None:
        raise ValidationError(_l("A timezone-aware time is required."), field="paid_at")
    paid_at = min(paid_at.astimezone(dt.UTC), now)

    lines = []
    for i, line in enumerate(data.lines):
        sku = product = None
        category = None
        if line.sku_code:
            found = db.session.execute(
                select(Sku, Product)
                .join(Product, Product.id == Sku.product_id)
                .where(Sku.code == line.sku_code.strip())
            ).first()
            if found is not None:
                sku, product = found
        if sku is not None:
            if product.category_id is not None:
                category = db.session.execute(
                    select(Category.code).where(Category.id == product.category_id)
                ).scalar()
        elif not line.name:
            raise ValidationError(
                _l("A line without a catalog SKU needs a name."), field=f"lines.{i}.name"
            )
        lines.append((line, sku, product, category))
    goods = sum(line.unit_price_fen * line.quantity for line, *_ in lines)
    order_no = numbers.new_order_no(now=now)
    categories = sorted({c for *_, c in lines if c})
    product_ids = sorted({str(p.id) for _l1, _s, p, _c in lines if p is not None})
    discount = 0
    for code in dict.fromkeys(c.strip() for c in data.coupons if c and c.strip()):
        if goods - discount <= 0:
            raise ValidationError(
                _l("Nothing is left for this coupon to take off."), field="coupons"
            )
        red = redemption.redeem(
            code=code,
            store_id=store_id,
            order_id=order_no,
            order_amount_fen=goods - discount,
            idempotency_key=f"shop:{order_no}:coupon:{code}",
            channel="pos",
            staff_id=guide_id,
            member_id=member_id,
            categories=categories,
            product_ids=product_ids,
            guess_ident=f"pos:{key_id}",
            now=now,
        )
        discount += red.discount_fen
    if data.pay_fen != goods - discount:
        raise Conflict(
            _l(
                "The amount collected should be %(yuan)s yuan.",
                yuan=pricing.yuan(goods - discount),
            ),
            field="pay_fen",
            code="amount_mismatch",
        )
    order = Order(
        order_no=order_no,
        channel=TILL,
        status=COMPLETED,
        fulfilment=IN_STORE,
        member_id=member_id,
        store_id=store_id,
        guide_id=guide_id,
        goods_fen=goods,
        discount_fen=discount,
        pay_fen=data.pay_fen,
        paid_fen=data.pay_fen,
        idempotency_key=key,
        pos_order_no=data.pos_order_no.strip(),
        paid_at=paid_at,
        completed_at=now,
        created_at=now,
        updated_at=now,
    )
    db.session.add(order)
    db.session.flush()
    shares = (
        pricing.allocate(discount, [line.unit_price_fen * line.quantity for line, *_ in lines])
        if goods
        else [0] * len(lines)
    )
    for (line, sku, product, category), share in zip(lines, shares, strict=True):
        amount = line.unit_price_fen * line.quantity
        db.session.add(
            OrderLine(
                order_id=order.id,
                sku_id=sku.id if sku else None,
                product_id=product.id if product else None,
                name=(product.name if product else line.name)[:120],
                spec_text=pricing.spec_text(sku.spec) if sku else "",
                sku_code=(line.sku_code or "").strip(),
                category=category,
                unit_price_fen=line.unit_price_fen,
                quantity=line.quantity,
                goods_fen=amount,
                discount_fen=share,
                pay_fen=amount - share,
                promotion=product.promotion if product else False,
            )
        )
    db.session.flush()
    signals.order_created.send(
        require_brand_id(),
        order_id=order.id,
        member_id=member_id,
        store_id=store_id,
        guide_id=guide_id,
        channel=TILL,
    )
    payments.after_paid(order)
    signals.order_completed.send(
        require_brand_id(), order_id=order.id, member_id=member_id, store_id=store_id
    )
    # The stock last: a best-seller's row stays locked only until the commit. Lines of one
    # SKU take their stock together (one ledger entry per order and SKU).
    wanted: dict[int, tuple[int, int]] = {}
    for i, (line, sku, _product, _category) in enumerate(lines):
        if sku is not None:
            first, qty = wanted.get(sku.id, (i, 0))
            wanted[sku.id] = (first, qty + line.quantity)
    for sku_id, (first, qty) in wanted.items():
        try:
            stock.change(
                sku_id=sku_id,
                delta=-qty,
                reason="till",
                idempotency_key=f"order:{order.id}:till:{sku_id}",
                order_id=order.id,
            )
        except stock.OutOfStock as exc:
            exc.field = f"lines.{first}.quantity"
            raise
    del member  # held until here: the session keeps loaded rows only while they are used
    return order, True


def _out(order: Order, created: bool) -> TillOrderOut:
    return TillOrderOut(
        order_no=order.order_no,
        pos_order_no=order.pos_order_no or "",
        created=created,
        goods_fen=order.goods_fen,
        discount_fen=order.discount_fen,
        pay_fen=order.pay_fen,
        member_id=order.member_id,
        points_earned=order.points_earned,
    )


@bp.post("/<brand_slug>/orders")
@api_operation(
    "pos",
    "post",
    "/api/pos/{brand_slug}/orders",
    summary="A paid till order (idempotent per key)",
    response=TillOrderOut,
    body=TillOrderIn,
    auth=False,
    errors=(400, 403, 409),
)
def post_order(brand_slug: str, body: TillOrderIn):
    brand = pos_brand(brand_slug)
    with use_brand(brand.id):
        key = authenticate_key()
        store_id, key_id = key.store_id, key.id
        # The key's "last used" is written at the end and at most once a minute: held from
        # the start, that row's lock would make a store's tills wait for each other.
        db.session.expire(key)
        order, created = create_order(store_id=store_id, data=body, key_id=key_id)
        out = _out(order, created)
        db.session.execute(
            update(PosKey)
            .where(
                PosKey.id == key_id,
                or_(PosKey.last_used_at.is_(None), PosKey.last_used_at < utcnow() - KEY_TOUCH),
            )
            .values(last_used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return out, 201 if created else 200
