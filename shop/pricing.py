"""Pricing a cart for a member: what each line costs now, what the coupons and points take
off, the shipping fee, and how the discounts are spread over the lines to the fen.

Nothing here writes: ``quote`` answers the figures checkout will charge, or raises why it
cannot (a price changed since the member saw it, a purchase limit, a coupon that does not
apply, more points than the balance or than the brand allows). ``allocate`` spreads an
amount over weights by largest remainder: the shares sum exactly to the amount, none passes
its weight, and each is within one fen of its exact proportion.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.db import db, utcnow
from core.errors import AppError, Conflict, ValidationError
from coupons import redemption
from coupons.errors import CouponNotUsable, NotStackable
from coupons.models import CASH, PERCENT, Coupon, CouponTemplate
from points import services as points_services
from points.errors import InsufficientPoints
from shop.cart import MAX_LINES, buyable_sku, check_quantity, spec_text
from shop.models import (
    CLOSED,
    DELIVERY,
    FULFILMENTS,
    IN_STORE,
    PICKUP,
    Category,
    FlashSale,
    Order,
    OrderLine,
    Product,
    ShopSettings,
    Sku,
)
from shop.settings import get_settings

MAX_COUPONS = 5
ONLINE_KINDS = (CASH, PERCENT)


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` fen over ``weights`` by largest remainder (ties: the earlier line).

    Weights are >= 0 with a positive sum when ``total`` is; with ``total <= sum(weights)``
    no share passes its weight.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("negative amount or weight")
    whole = sum(weights)
    if total == 0 or not weights:
        return [0] * len(weights)
    if whole == 0:
        raise ValueError("an amount spread over nothing")
    shares = [total * w // whole for w in weights]
    remainders = [(total * w % whole, -i) for i, w in enumerate(weights)]
    left = total - sum(shares)
    for _r, neg_i in sorted(remainders, reverse=True)[:left]:
        shares[-neg_i] += 1
    return shares


@dataclasses.dataclass(frozen=True)
class Item:
    """What the member asks for: a SKU, how many, the price they saw (None: not checked),
    and the flash sale it is bought in, if any."""

    sku_id: int
    quantity: int
    seen_price_fen: int | None = None
    flash_sale_id: int | None = None


@dataclasses.dataclass
class PricedLine:
    sku: Sku
    product: Product
    category: str | None
    unit_price_fen: int
    quantity: int
    flash_sale_id: int | None = None
    discount_fen: int = 0
    points_fen: int = 0
    points_used: int = 0

    @property
    def goods_fen(self) -> int:
        return self.unit_price_fen * self.quantity

    @property
    def pay_fen(self) -> int:
        return self.goods_fen - self.discount_fen - self.points_fen

    @property
    def spec_text(self) -> str:
        return spec_text(self.sku.spec)


@dataclasses.dataclass
class AppliedCoupon:
    coupon: Coupon
    template: CouponTemplate
    discount_fen: int
    amount_fen: int  # what the coupon was checked against (its eligible lines)
    categories: list[str]
    product_ids: list[str]


@dataclasses.dataclass
class Quote:
    lines: list[PricedLine]
    coupons: list[AppliedCoupon]
    points_used: int
    points_fen: int
    shipping_fen: int
    max_points: int  # the most points this order could take
    fulfilment: str
    store_id: int | None

    @property
    def goods_fen(self) -> int:
        return sum(line.goods_fen for line in self.lines)

    @property
    def discount_fen(self) -> int:
        return sum(c.discount_fen for c in self.coupons)

    @property
    def pay_fen(self) -> int:
        return self.goods_fen - self.discount_fen - self.points_fen + self.shipping_fen


def yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def _flash_price(item: Item, sku: Sku, now: dt.datetime, field: str) -> FlashSale:
    sale = db.session.get(FlashSale, item.flash_sale_id)
    if sale is None or sale.sku_id != sku.id:
        raise ValidationError(_l("This flash sale does not exist."), field=field)
    if not sale.active or not sale.starts_at <= now < sale.ends_at:
        raise Conflict(_l("This flash sale is not running."), field=field, code="flash_closed")
    return sale


def _lines(items: list[Item], now: dt.datetime) -> list[PricedLine]:
    if not isinstance(items, list | tuple) or not items:
        raise ValidationError(_l("Choose at least one item."), field="items")
    if len(items) > MAX_LINES:
        raise ValidationError(_l("Too many items in one order."), field="items")
    seen: set[int] = set()
    lines = []
    for i, item in enumerate(items):
        check_quantity(item.quantity, field=f"items.{i}.quantity")
        sku, product = buyable_sku(item.sku_id, field=f"items.{i}.sku_id")
        if sku.id in seen:
            raise ValidationError(_l("An item is listed twice."), field=f"items.{i}.sku_id")
        seen.add(sku.id)
        price = sku.price_fen
        if item.flash_sale_id is not None:
            price = _flash_price(item, sku, now, f"items.{i}.flash_sale_id").price_fen
        if item.seen_price_fen is not None and item.seen_price_fen != price:
            raise Conflict(
                _l(
                    "The price of %(name)s is now %(yuan)s yuan. Check the order again.",
                    name=product.name,
                    yuan=yuan(price),
                ),
                field=f"items.{i}.price",
                code="price_changed",
            )
        category = None
        if product.category_id is not None:
            category = db.session.execute(
                select(Category.code).where(Category.id == product.category_id)
            ).scalar()
        lines.append(
            PricedLine(
                sku=sku,
                product=product,
                category=category,
                unit_price_fen=price,
                quantity=item.quantity,
                flash_sale_id=item.flash_sale_id,
            )
        )
    return lines


def _check_limits(member_id: int | None, lines: list[PricedLine]) -> None:
    """Per-member purchase limits of the products (over the member's orders not closed)."""
    limited = {line.product.id: line.product for line in lines if line.product.limit_per_member}
    if not limited or member_id is None:
        return
    bought = dict(
        db.session.execute(
            select(OrderLine.product_id, func.sum(OrderLine.quantity - OrderLine.refunded_qty))
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                Order.member_id == member_id,
                Order.status != CLOSED,
                OrderLine.product_id.in_(list(limited)),
            )
            .group_by(OrderLine.product_id)
        ).all()
    )
    wanted: dict[int, int] = {}
    for line in lines:
        wanted[line.product.id] = wanted.get(line.product.id, 0) + line.quantity
    for pid, product in limited.items():
        already = int(bought.get(pid) or 0)
        if already + wanted[pid] > product.limit_per_member:
            raise Conflict(
                _l(
                    "%(name)s is limited to %(n)d per member; you can still buy %(left)d.",
                    name=product.name,
                    n=product.limit_per_member,
                    left=max(0, product.limit_per_member - already),
                ),
                field="quantity",
                code="limit_reached",
            )


def _eligible(tpl: CouponTemplate, line: PricedLine) -> bool:
    if tpl.categories and line.category not in tpl.categories:
        return False
    return not (tpl.product_ids and str(line.product.id) not in {str(p) for p in tpl.product_ids})


def _apply_coupons(
    codes: list[str], *, member_id: int | None, store_id: int | None, lines, now
) -> list[AppliedCoupon]:
    codes = list(dict.fromkeys(c.strip() for c in codes or [] if c and c.strip()))
    if not codes:
        return []
    if member_id is None:
        raise ValidationError(_l("Sign in as a member to use coupons."), field="coupons")
    if len(codes) > MAX_COUPONS:
        raise ValidationError(_l("Too many coupons on one order."), field="coupons")
    applied: list[AppliedCoupon] = []
    categories = sorted({line.category for line in lines if line.category})
    product_ids = sorted({str(line.product.id) for line in lines})
    for code in codes:
        try:
            coupon = redemption.find(code=code, member_id=member_id)
        except AppError as exc:
            exc.field = "coupons"
            raise
        tpl = db.session.get(CouponTemplate, coupon.template_id)
        if tpl.kind not in ONLINE_KINDS:
            raise CouponNotUsable(
                _l("This coupon cannot be used in the online shop."), field="coupons"
            )
        eligible = [i for i, line in enumerate(lines) if _eligible(tpl, line)]
        remaining = [lines[i].goods_fen - lines[i].discount_fen for i in eligible]
        amount = sum(remaining)
        if amount <= 0:
            raise CouponNotUsable(
                _l("The order has no product this coupon applies to."), field="coupons"
            )
        try:
            discount = redemption.check_usable(
                coupon,
                tpl,
                store_id=store_id,
                amount_fen=amount,
                categories=categories,
                product_ids=product_ids,
                now=now,
            )
        except AppError as exc:
            exc.field = "coupons"
            raise
        if applied and not (tpl.stackable and all(a.template.stackable for a in applied)):
            raise NotStackable(
                _l("These coupons cannot be combined on one order."), field="coupons"
            )
        for i, share in zip(eligible, allocate(discount, remaining), strict=True):
            lines[i].discount_fen += share
        applied.append(AppliedCoupon(coupon, tpl, discount, amount, categories, product_ids))
    return applied


def shipping_fee(settings: ShopSettings, *, fulfilment: str, province: str | None, fen: int) -> int:
    if fulfilment != DELIVERY:
        return 0
    if settings.free_shipping_fen and fen >= settings.free_shipping_fen:
        return 0
    by_region = settings.shipping_by_region or {}
    if province and province in by_region:
        return int(by_region[province])
    return int(settings.shipping_fee_fen)


def points_value(points: int, rate: int) -> tuple[int, int]:
    """(fen taken off, points charged) for up to ``points`` at ``rate`` points per yuan: the
    points charged are the fewest that buy that many fen."""
    fen = points * 100 // rate
    return fen, -(-fen * rate // 100)


def quote(
    *,
    member_id: int | None,
    items: list[Item],
    coupons: list[str] | None = None,
    points: int = 0,
    fulfilment: str = DELIVERY,
    province: str | None = None,
    store_id: int | None = None,
    now: dt.datetime | None = None,
) -> Quote:
    """Price ``items`` for a member (see the module's text); writes nothing."""
    now = now or utcnow()
    settings = get_settings()
    if fulfilment not in FULFILMENTS or fulfilment == IN_STORE:
        raise ValidationError(_l("Choose delivery or pick-up."), field="fulfilment")
    if fulfilment == DELIVERY and not settings.allow_delivery:
        raise ValidationError(_l("This shop does not deliver."), field="fulfilment")
    if fulfilment == PICKUP and not settings.allow_pickup:
        raise ValidationError(_l("This shop has no pick-up."), field="fulfilment")
    if not isinstance(points, int) or isinstance(points, bool) or points < 0:
        raise ValidationError(_l("Points must be a whole number, 0 or more."), field="points")
    lines = _lines(list(items), now)
    _check_limits(member_id, lines)
    applied = _apply_coupons(
        coupons or [], member_id=member_id, store_id=store_id, lines=lines, now=now
    )
    after_coupons = sum(line.goods_fen - line.discount_fen for line in lines)
    rate = settings.points_per_yuan
    max_fen = after_coupons * settings.max_points_percent // 100
    max_points = max_fen * rate // 100
    points_fen = points_used = 0
    if points:
        if member_id is None:
            raise ValidationError(_l("Sign in as a member to use points."), field="points")
        points_fen, points_used = points_value(points, rate)
        if points_fen == 0:
            raise ValidationError(
                _l("At least %(n)d points are needed to take off 0.01 yuan.", n=-(-rate // 100)),
                field="points",
            )
        if points_fen > max_fen:
            raise ValidationError(
                _l("At most %(n)d points can be used on this order.", n=max_points),
                field="points",
            )
        available = points_services.balance(member_id).balance
        if points_used > available:
            raise InsufficientPoints(_l("You have %(n)d points.", n=available), field="points")
        weights = [line.goods_fen - line.discount_fen for line in lines]
        for line, share in zip(lines, allocate(points_fen, weights), strict=True):
            line.points_fen = share
        for line, share in zip(
            lines, allocate(points_used, [line.points_fen for line in lines]), strict=True
        ):
            line.points_used = share
    shipping = shipping_fee(settings, fulfilment=fulfilment, province=province, fen=after_coupons)
    return Quote(
        lines=lines,
        coupons=applied,
        points_used=points_used,
        points_fen=points_fen,
        shipping_fen=shipping,
        max_points=max_points,
        fulfilment=fulfilment,
        store_id=store_id,
    )
