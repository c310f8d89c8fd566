"""The shop: catalog (categories, products, SKUs, stock ledger, flash sales), carts, orders of
every channel with their lines, payments, after-sale requests, refunds, the members'
purchase facts and the reconciliation against WeChat Pay's bill.

Invariants live in the database: stock never goes below zero (``CHECK``), every stock
change, order creation from a till, payment, refund and flash-sale sale carries a unique
idempotency key or number, a line is never refunded past what it was paid (``CHECK``),
and money is integer fen.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# Order channels: the brand's mini-program shop, its H5 pages in the official account, a
# store's till (POS).
MINI_PROGRAM, H5, TILL = "mini_program", "h5", "till"
CHANNELS = (MINI_PROGRAM, H5, TILL)

# Order states: created -> paid -> shipped | ready (for pick-up) -> received -> completed;
# closed when unpaid at its deadline (or cancelled before payment). A till order is created
# paid and completes at once.
CREATED, PAID, SHIPPED, READY, RECEIVED, COMPLETED, CLOSED = (
    "created",
    "paid",
    "shipped",
    "ready",
    "received",
    "completed",
    "closed",
)
ORDER_STATES = (CREATED, PAID, SHIPPED, READY, RECEIVED, COMPLETED, CLOSED)

# How an order reaches the member.
DELIVERY, PICKUP, IN_STORE = "delivery", "pickup", "in_store"
FULFILMENTS = (DELIVERY, PICKUP, IN_STORE)

# Refund state of an order (independent of its fulfilment state).
REFUND_NONE, REFUND_PARTIAL, REFUND_FULL = "none", "partial", "full"

# Payment states. A surplus payment is money WeChat Pay took for an attempt after the order
# stopped waiting for it (paid by another attempt, or closed): it is returned in full.
PAY_PENDING, PAY_PAID, PAY_CLOSED, PAY_SURPLUS = "pending", "paid", "closed", "surplus"

# After-sale requests.
REFUND_ONLY, RETURN_REFUND = "refund_only", "return_refund"
AFTER_SALE_KINDS = (REFUND_ONLY, RETURN_REFUND)
AS_REQUESTED, AS_APPROVED, AS_REFUSED, AS_REFUNDING, AS_REFUNDED, AS_CANCELLED = (
    "requested",
    "approved",
    "refused",
    "refunding",
    "refunded",
    "cancelled",
)

# Refunds through WeChat Pay (or recorded for a till order).
RF_PROCESSING, RF_SUCCESS, RF_FAILED = "processing", "success", "failed"

# Stock ledger reasons.
STOCK_REASONS = ("adjust", "import", "reserve", "release", "restock", "till")

# Reservations (stock held for an unpaid order).
RES_HELD, RES_CONFIRMED, RES_RELEASED = "held", "confirmed", "released"


class ShopSettings(IdMixin, BrandScoped, db.Model):
    """A brand's shop rules: one row per brand."""

    __tablename__ = "shop_settings"
    __table_args__ = (
        UniqueConstraint("brand_id"),
        CheckConstraint("points_per_yuan > 0", name="points_rate"),
        CheckConstraint("max_points_percent BETWEEN 0 AND 100", name="points_share"),
        CheckConstraint("pay_timeout_minutes BETWEEN 5 AND 120", name="pay_timeout"),
        CheckConstraint("auto_receive_days BETWEEN 3 AND 30", name="auto_receive"),
        CheckConstraint("auto_complete_days BETWEEN 1 AND 60", name="auto_complete"),
        CheckConstraint("return_window_days BETWEEN 0 AND 180", name="return_window"),
    )

    # Points as money at checkout: ``points_per_yuan`` points take 1 yuan off, up to
    # ``max_points_percent`` of what is left after coupons.
    points_per_yuan: Mapped[int] = mapped_column(Integer, default=100)
    max_points_percent: Mapped[int] = mapped_column(Integer, default=50)
    pay_timeout_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # A shipped order counts as received this many days after shipping unless the member
    # confirmed earlier or asked for an after-sale.
    auto_receive_days: Mapped[int] = mapped_column(Integer, default=10)
    # A received (or picked-up) order completes after this many days without a complaint.
    auto_complete_days: Mapped[int] = mapped_column(Integer, default=7)
    # After-sale requests are accepted this many days after completion.
    return_window_days: Mapped[int] = mapped_column(Integer, default=15)
    allow_delivery: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_pickup: Mapped[bool] = mapped_column(Boolean, default=True)
    shipping_fee_fen: Mapped[int] = mapped_column(Integer, default=0)  # default fee
    free_shipping_fen: Mapped[int] = mapped_column(Integer, default=0)  # 0: never free
    # {"新疆": 2000, "西藏": 2000}: the fee for a province instead of the default.
    shipping_by_region: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Category(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A product category; ``code`` is what coupon templates and points campaigns name."""

    __tablename__ = "shop_category"
    __table_args__ = (UniqueConstraint("brand_id", "code"),)

    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(60))
    sort: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Product(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A product (SPU): what the member sees; its SKUs carry price and stock."""

    __tablename__ = "shop_product"
    __table_args__ = (
        UniqueConstraint("brand_id", "code"),
        Index("ix_shop_product_listing", "brand_id", "on_sale", "sort", "id"),
        CheckConstraint("limit_per_member >= 0", name="limit_per_member"),
    )

    code: Mapped[str] = mapped_column(String(60))  # the brand's own product number
    name: Mapped[str] = mapped_column(String(120))
    category_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("shop_category.id", ondelete="SET NULL"), index=True
    )
    subtitle: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    images: Mapped[list] = mapped_column(JSON, default=list)  # storage keys, first = cover
    on_sale: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_per_member: Mapped[int] = mapped_column(Integer, default=0)  # 0: no limit
    # Promotion items earn no guide commission when the brand says so (guide distribution).
    promotion: Mapped[bool] = mapped_column(Boolean, default=False)
    sort: Mapped[int] = mapped_column(Integer, default=0)


class Sku(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """One buyable variant of a product (size, colour) with its price and stock.

    ``stock`` is what can still be sold; a checkout reserves by decrementing it in one
    conditional UPDATE, a release or a restock adds back; ``sold`` counts paid units.
    """

    __tablename__ = "shop_sku"
    __table_args__ = (
        UniqueConstraint("brand_id", "code"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("sold >= 0", name="sold_not_negative"),
        CheckConstraint("price_fen > 0 AND original_price_fen >= 0", name="price"),
    )

    product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_product.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(60))  # barcode / SKU number, unique per brand
    # {"颜色": "黑", "尺码": "M"} in the order the brand wrote them.
    spec: Mapped[dict] = mapped_column(JSON, default=dict)
    price_fen: Mapped[int] = mapped_column(Integer)
    original_price_fen: Mapped[int] = mapped_column(Integer, default=0)  # 划线价, 0: none
    stock: Mapped[int] = mapped_column(Integer, default=0)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StockEntry(IdMixin, BrandScoped, db.Model):
    """Append-only stock ledger: every change of a SKU's ``stock``."""

    __tablename__ = "shop_stock_entry"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key"),
        Index("ix_shop_stock_entry_sku", "sku_id", "id"),
    )

    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("shop_sku.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))  # STOCK_REASONS
    order_id: Mapped[int | None] = mapped_column(BigId)
    operator: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FlashSale(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A quantity of one SKU at a price in a time window, with a limit per member.

    The first decision is taken in Redis by an atomic script (``remaining`` and the member's
    count there); PostgreSQL confirms with a conditional UPDATE of ``sold`` so that
    ``sold <= quantity`` holds whatever Redis did.
    """

    __tablename__ = "shop_flash_sale"
    __table_args__ = (
        CheckConstraint("sold >= 0 AND sold <= quantity", name="sold_within_quantity"),
        CheckConstraint("per_member_limit >= 1", name="per_member_limit"),
        CheckConstraint("price_fen > 0", name="price"),
        CheckConstraint("ends_at > starts_at", name="window"),
    )

    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("shop_sku.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    price_fen: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)  # held + paid units
    per_member_limit: Mapped[int] = mapped_column(Integer, default=1)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CartItem(IdMixin, BrandScoped, db.Model):
    """A SKU in a member's cart, with the price the member saw when adding it."""

    __tablename__ = "shop_cart_item"
    __table_args__ = (
        UniqueConstraint("member_id", "sku_id"),
        CheckConstraint("quantity > 0", name="quantity"),
    )

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id", ondelete="CASCADE"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("shop_sku.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer)
    seen_price_fen: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(IdMixin, TimestampMixin, BrandScoped, db.Model):
    """One order of one channel. Amounts in fen:

    ``goods_fen`` (lines at their prices) - ``discount_fen`` (coupons) - ``points_fen``
    (points as money) + ``shipping_fen`` = ``pay_fen`` (what the member pays);
    ``refunded_fen`` never passes ``paid_fen``.
    """

    __tablename__ = "shop_order"
    __table_args__ = (
        UniqueConstraint("brand_id", "order_no"),
        UniqueConstraint("brand_id", "idempotency_key"),
        CheckConstraint(
            "goods_fen >= 0 AND discount_fen >= 0 AND points_fen >= 0 AND shipping_fen >= 0",
            name="amounts",
        ),
        CheckConstraint(
            "pay_fen = goods_fen - discount_fen - points_fen + shipping_fen", name="pay_fen"
        ),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= paid_fen", name="refund_within"),
        Index("ix_shop_order_member", "member_id", "id"),
        Index("ix_shop_order_brand_status", "brand_id", "status", "id"),
        Index("ix_shop_order_store", "brand_id", "store_id", "id"),
        Index("ix_shop_order_paid_at", "brand_id", "paid_at"),
        Index("ix_shop_order_due", "pay_deadline", postgresql_where="status = 'created'"),
        # A pick-up code is unique among the brand's orders waiting to be picked up.
        Index(
            "uq_shop_order_open_pickup",
            "brand_id",
            "pickup_code",
            unique=True,
            postgresql_where="status = 'ready' AND pickup_code IS NOT NULL",
        ),
        # Orders to receive or complete automatically (the fulfilment job's sweeps).
        Index("ix_shop_order_shipped_due", "shipped_at", postgresql_where="status = 'shipped'"),
        Index("ix_shop_order_received_due", "received_at", postgresql_where="status = 'received'"),
    )

    order_no: Mapped[str] = mapped_column(String(32))  # shown to members and staff
    channel: Mapped[str] = mapped_column(String(16))  # CHANNELS
    status: Mapped[str] = mapped_column(String(12), default=CREATED)
    refund_state: Mapped[str] = mapped_column(String(8), default=REFUND_NONE)
    fulfilment: Mapped[str] = mapped_column(String(10), default=DELIVERY)
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("member.id"))
    # The store the sale is attributed to (the till's store, the pick-up store, or the
    # member's store for a delivery) and the guide at the till, if any.
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"))
    guide_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    goods_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    pay_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_ids: Mapped[list] = mapped_column(JSON, default=list)
    flash_sale_id: Mapped[int | None] = mapped_column(BigId)
    # A till order: the till's own idempotency key and order number.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    pos_order_no: Mapped[str | None] = mapped_column(String(64))
    # Delivery: {"name", "phone", "province", "city", "district", "detail"}.
    address: Mapped[dict | None] = mapped_column(JSON)
    carrier: Mapped[str | None] = mapped_column(String(40))
    tracking_no: Mapped[str | None] = mapped_column(String(64))
    pickup_code: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(200), default="")
    pay_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(40))


class OrderLine(IdMixin, BrandScoped, db.Model):
    """A SKU on an order with its share of the discounts, allocated to the fen.

    ``pay_fen = goods_fen - discount_fen - points_fen``; the order's coupon discount and
    points are spread over the lines by largest remainder, so that partial refunds return
    exact amounts. ``refunded_fen``/``refunded_qty`` never pass ``pay_fen``/``quantity``.
    """

    __tablename__ = "shop_order_line"
    __table_args__ = (
        CheckConstraint("quantity > 0 AND unit_price_fen >= 0", name="quantity_price"),
        CheckConstraint(
            "pay_fen = goods_fen - discount_fen - points_fen AND pay_fen >= 0", name="pay_fen"
        ),
        CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= pay_fen "
            "AND refunded_qty >= 0 AND refunded_qty <= quantity",
            name="refund_within",
        ),
    )

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_order.id", ondelete="CASCADE"), index=True
    )
    sku_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("shop_sku.id"))
    product_id: Mapped[int | None] = mapped_column(BigId)
    # What was bought, as it was then: names and prices are snapshots.
    name: Mapped[str] = mapped_column(String(120))
    spec_text: Mapped[str] = mapped_column(String(120), default="")
    sku_code: Mapped[str] = mapped_column(String(60), default="")
    category: Mapped[str | None] = mapped_column(String(60))  # category code
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    goods_fen: Mapped[int] = mapped_column(BigInteger)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    points_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    pay_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_qty: Mapped[int] = mapped_column(Integer, default=0)
    refunded_points: Mapped[int] = mapped_column(BigInteger, default=0)
    flash_sale_id: Mapped[int | None] = mapped_column(BigId)
    promotion: Mapped[bool] = mapped_column(Boolean, default=False)


class Reservation(IdMixin, BrandScoped, db.Model):
    """Stock held for an unpaid order: confirmed when paid, released exactly once when not."""

    __tablename__ = "shop_reservation"
    __table_args__ = (
        UniqueConstraint("order_id", "sku_id"),
        CheckConstraint("quantity > 0", name="quantity"),
        Index("ix_shop_reservation_held", "expires_at", postgresql_where="status = 'held'"),
    )

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_order.id", ondelete="CASCADE"), index=True
    )
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("shop_sku.id"))
    flash_sale_id: Mapped[int | None] = mapped_column(BigId)
    member_id: Mapped[int | None] = mapped_column(BigId)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=RES_HELD)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Payment(IdMixin, BrandScoped, db.Model):
    """A WeChat Pay transaction for an order (one per attempt; ``out_trade_no`` is ours)."""

    __tablename__ = "shop_payment"
    __table_args__ = (
        UniqueConstraint("brand_id", "out_trade_no"),
        UniqueConstraint("brand_id", "transaction_id"),
        Index("ix_shop_payment_pending", "created_at", postgresql_where="status = 'pending'"),
        # A brand's payments of a day, for the daily reconciliation with WeChat Pay's bill.
        Index(
            "ix_shop_payment_paid",
            "brand_id",
            "paid_at",
            postgresql_where="status IN ('paid', 'surplus')",
        ),
    )

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_order.id", ondelete="CASCADE"), index=True
    )
    out_trade_no: Mapped[str] = mapped_column(String(32))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    mini_program: Mapped[bool] = mapped_column(Boolean, default=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default=PAY_PENDING)
    # How the payment was learned: "notify" or "query".
    confirmed_by: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PayNotifyLog(IdMixin, BrandScoped, db.Model):
    """Every payment or refund notify received, with what was done with it."""

    __tablename__ = "shop_pay_notify_log"
    __table_args__ = (Index("ix_shop_pay_notify_log_brand", "brand_id", "id"),)

    kind: Mapped[str] = mapped_column(String(12))  # transaction | refund
    out_trade_no: Mapped[str | None] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(64))  # transaction or refund id
    outcome: Mapped[str] = mapped_column(String(24))  # applied, duplicate, refused:<reason>
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AfterSale(IdMixin, TimestampMixin, BrandScoped, db.Model):
    """A member's request to refund (and possibly return) lines of an order."""

    __tablename__ = "shop_after_sale"
    __table_args__ = (
        UniqueConstraint("brand_id", "request_no"),
        Index("ix_shop_after_sale_queue", "brand_id", "status", "id"),
    )

    request_no: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_order.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(14))  # AFTER_SALE_KINDS
    status: Mapped[str] = mapped_column(String(10), default=AS_REQUESTED)
    reason: Mapped[str] = mapped_column(String(200), default="")
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refuse_reason: Mapped[str | None] = mapped_column(String(200))
    return_tracking_no: Mapped[str | None] = mapped_column(String(64))


class AfterSaleLine(IdMixin, BrandScoped, db.Model):
    """A line of an after-sale request: how many units and how much of one order line."""

    __tablename__ = "shop_after_sale_line"
    __table_args__ = (
        UniqueConstraint("after_sale_id", "order_line_id"),
        CheckConstraint("quantity >= 0 AND amount_fen > 0", name="amount"),
    )

    after_sale_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_after_sale.id", ondelete="CASCADE"), index=True
    )
    order_line_id: Mapped[int] = mapped_column(BigId, ForeignKey("shop_order_line.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class Refund(IdMixin, BrandScoped, db.Model):
    """Money returned for an order: through WeChat Pay (``out_refund_no`` is ours) or, for a
    till order, recorded as returned at the till."""

    __tablename__ = "shop_refund"
    __table_args__ = (
        UniqueConstraint("brand_id", "out_refund_no"),
        CheckConstraint("amount_fen > 0", name="amount"),
        Index("ix_shop_refund_processing", "created_at", postgresql_where="status = 'processing'"),
        # A till's refund request: the same key posted again is the same refund.
        UniqueConstraint("brand_id", "idempotency_key"),
        # One return per surplus payment.
        Index(
            "uq_shop_refund_payment",
            "brand_id",
            "payment_id",
            unique=True,
            postgresql_where="payment_id IS NOT NULL",
        ),
    )

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_order.id", ondelete="CASCADE"), index=True
    )
    after_sale_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("shop_after_sale.id"))
    # Set only for the return of a surplus payment (PAY_SURPLUS): the whole of that payment
    # goes back and nothing of the order changes.
    payment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("shop_payment.id"))
    out_refund_no: Mapped[str] = mapped_column(String(64))
    refund_id: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    points_returned: Mapped[int] = mapped_column(BigInteger, default=0)  # spent points back
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)  # earned points back
    status: Mapped[str] = mapped_column(String(12), default=RF_PROCESSING)
    reason: Mapped[str] = mapped_column(String(200), default="")
    # Lines returned to the shop are restocked when the refund succeeds.
    restock: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    operator: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RefundLine(IdMixin, BrandScoped, db.Model):
    """What one refund returns of one order line."""

    __tablename__ = "shop_refund_line"
    __table_args__ = (
        UniqueConstraint("refund_id", "order_line_id"),
        CheckConstraint("quantity >= 0 AND amount_fen >= 0", name="amount"),
    )

    refund_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_refund.id", ondelete="CASCADE"), index=True
    )
    order_line_id: Mapped[int] = mapped_column(BigId, ForeignKey("shop_order_line.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger, default=0)  # spent points returned


class MemberPurchaseFacts(BrandScoped, db.Model):
    """A member's purchase facts (RFM) over every channel, kept with each paid or refunded
    order: what segments select on without reading orders."""

    __tablename__ = "shop_member_facts"
    __table_args__ = (Index("ix_shop_member_facts_last", "brand_id", "last_purchase_at"),)

    member_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("member.id", ondelete="CASCADE"), primary_key=True
    )
    first_purchase_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_purchase_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    spend_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # paid minus refunded
    online_count: Mapped[int] = mapped_column(Integer, default=0)
    till_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SalesDayRollup(IdMixin, BrandScoped, db.Model):
    """Paid and refunded money per brand-local day, store and channel (the overview's
    sales charts), kept in the transaction that pays or refunds."""

    __tablename__ = "shop_sales_day_rollup"
    __table_args__ = (
        UniqueConstraint("brand_id", "day", "store_key", "channel"),
        Index("ix_shop_sales_day_rollup_day", "brand_id", "day"),
    )

    day: Mapped[dt.date] = mapped_column(Date)
    store_key: Mapped[int] = mapped_column(BigId, default=0)  # store id, 0: none
    channel: Mapped[str] = mapped_column(String(16))
    orders: Mapped[int] = mapped_column(Integer, default=0)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class ReconciliationIssue(IdMixin, BrandScoped, db.Model):
    """A difference between WeChat Pay's trade bill for a day and our payments."""

    __tablename__ = "shop_reconciliation_issue"
    __table_args__ = (
        UniqueConstraint("brand_id", "bill_date", "out_trade_no", "kind"),
        Index("ix_shop_reconciliation_day", "brand_id", "bill_date"),
    )

    bill_date: Mapped[dt.date] = mapped_column(Date)
    out_trade_no: Mapped[str] = mapped_column(String(64))
    # missing_here (in the bill, not paid here), missing_there (paid here, not in the bill),
    # amount (amounts differ), state (states differ), refund (refunded amounts differ).
    kind: Mapped[str] = mapped_column(String(16))
    ours: Mapped[str] = mapped_column(String(120), default="")
    theirs: Mapped[str] = mapped_column(String(120), default="")
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
