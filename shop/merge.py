"""Member merge (``members.merge.register_merge_handler``): what the shop keeps per member
moves to the kept member, so that their order history, after-sales, per-member purchase
limits (counted over orders and reservations) and purchase facts are one person's."""

from __future__ import annotations

from sqlalchemy import text

from core.db import db
from core.tenancy import require_brand_id
from members.merge import move_member_rows

# tables whose rows simply change hands
_MOVED = (
    ("shop_orders", "shop_order"),
    ("shop_reservations", "shop_reservation"),
    ("shop_after_sales", "shop_after_sale"),
)


def merge_member(kept_id: int, merged_id: int) -> dict:
    params = {"b": require_brand_id(), "kept": kept_id, "merged": merged_id}
    counts = move_member_rows(kept_id, merged_id, _MOVED)
    # the cart: a SKU in both carts keeps the larger quantity (one person's one wish)
    db.session.execute(
        text(
            "UPDATE shop_cart_item k SET quantity = greatest(k.quantity, m.quantity)"
            " FROM shop_cart_item m WHERE k.brand_id = :b AND k.member_id = :kept"
            " AND m.member_id = :merged AND m.sku_id = k.sku_id"
        ),
        params,
    )
    db.session.execute(
        text(
            "DELETE FROM shop_cart_item m WHERE m.brand_id = :b AND m.member_id = :merged"
            " AND EXISTS (SELECT 1 FROM shop_cart_item k WHERE k.member_id = :kept"
            " AND k.sku_id = m.sku_id)"
        ),
        params,
    )
    n = db.session.execute(
        text(
            "UPDATE shop_cart_item SET member_id = :kept"
            " WHERE brand_id = :b AND member_id = :merged"
        ),
        params,
    ).rowcount
    if n:
        counts["shop_cart_items"] = n
    # purchase facts: the two records added up (they count different orders)
    merged_facts = db.session.execute(
        text(
            "DELETE FROM shop_member_facts WHERE brand_id = :b AND member_id = :merged"
            " RETURNING first_purchase_at, last_purchase_at, order_count, spend_fen,"
            " online_count, till_count"
        ),
        params,
    ).one_or_none()
    if merged_facts is not None:
        db.session.execute(
            text(
                "INSERT INTO shop_member_facts AS f (brand_id, member_id, first_purchase_at,"
                " last_purchase_at, order_count, spend_fen, online_count, till_count,"
                " updated_at)"
                " VALUES (:b, :kept, :first, :last, :orders, :spend, :online, :till, now())"
                " ON CONFLICT (member_id) DO UPDATE SET"
                " first_purchase_at = least(f.first_purchase_at, excluded.first_purchase_at),"
                " last_purchase_at = greatest(f.last_purchase_at, excluded.last_purchase_at),"
                " order_count = f.order_count + excluded.order_count,"
                " spend_fen = f.spend_fen + excluded.spend_fen,"
                " online_count = f.online_count + excluded.online_count,"
                " till_count = f.till_count + excluded.till_count, updated_at = now()"
            ),
            {
                **params,
                "first": merged_facts.first_purchase_at,
                "last": merged_facts.last_purchase_at,
                "orders": merged_facts.order_count,
                "spend": merged_facts.spend_fen,
                "online": merged_facts.online_count,
                "till": merged_facts.till_count,
            },
        )
        counts["shop_purchase_facts"] = 1
    return counts
