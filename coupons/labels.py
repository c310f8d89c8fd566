"""Chinese names of the coupons package's codes (core.labels): coupon kinds and statuses,
redemption channels and statuses, where a coupon came from, what a merge moved."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.labels import register_labels

KIND = {
    "cash": _l("Cash off"),
    "percent": _l("Percentage discount"),
    "gift": _l("Gift item"),
    "exchange": _l("Exchange voucher"),
    "shipping": _l("Free shipping"),
    "third_party": _l("Third-party codes"),
}
COUPON_STATUS = {
    "available": _l("Available"),
    "redeemed": _l("Used"),
    "expired": _l("Expired"),
    "transferred": _l("Given to a friend"),
    "void": _l("Void"),
}
REDEMPTION_CHANNEL = {"pos": _l("POS"), "staff": _l("Store clerk"), "online": _l("Online shop")}
REDEMPTION_STATUS = {"done": _l("Redeemed"), "reversed": _l("Reversed")}
BATCH_STATUS = {"pending": _l("Waiting"), "done": _l("Done"), "failed": _l("Failed")}
MERGE_MOVED = {
    "coupons": _l("Coupons"),
    "coupon_shares": _l("Coupon shares"),
    "mall_orders": _l("Points mall orders"),
}

register_labels("coupon_kind", KIND)
register_labels("coupon_status", COUPON_STATUS)
register_labels("redemption_channel", REDEMPTION_CHANNEL)
register_labels("redemption_status", REDEMPTION_STATUS)
register_labels("issue_batch_status", BATCH_STATUS)
register_labels("merge_moved", MERGE_MOVED)
register_labels(
    "job",
    {
        "coupons.jobs.expire_due": _l("Expire coupons"),
        "coupons.jobs.remind_expiring": _l("Remind members of expiring coupons"),
        "coupons.jobs.send_reminder": _l("Coupon expiry reminder"),
    },
)
register_labels(
    "audit_object",
    {"coupon_template": _l("Coupon"), "coupon_mall_item": _l("Points mall item")},
)
register_labels(
    "audit_field",
    {
        "coupon_template.kind": _l("Kind"),
        "coupon_template.value_fen": _l("Value (fen)"),
        "coupon_template.threshold_fen": _l("Minimum order (fen)"),
        "coupon_template.stock": _l("Stock"),
        "coupon_template.store_ids": _l("Only in stores"),
        "coupon_template.valid_from": _l("Valid from"),
        "coupon_template.valid_until": _l("Valid until"),
        "coupon_template.valid_days": _l("Valid for days"),
        "coupon_mall_item.title": _l("Title"),
        "coupon_mall_item.price_points": _l("Price in points"),
        "coupon_mall_item.tier_ids": _l("Only for tiers"),
    },
)
