"""Chinese names of the order codes (core.labels): states, channels, fulfilment, refunds,
after-sale requests and reconciliation issues."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.labels import register_labels

register_labels(
    "shop_order_status",
    {
        "created": _l("Awaiting payment"),
        "paid": _l("Paid, to fulfil"),
        "shipped": _l("Shipped"),
        "ready": _l("Ready for pick-up"),
        "received": _l("Received"),
        "completed": _l("Completed"),
        "closed": _l("Closed"),
    },
)
register_labels(
    "shop_channel",
    {"mini_program": _l("Mini-program"), "h5": _l("Official account pages"), "till": _l("Till")},
)
register_labels(
    "shop_fulfilment",
    {"delivery": _l("Delivery"), "pickup": _l("Store pick-up"), "in_store": _l("In store")},
)
register_labels(
    "shop_refund_state",
    {"none": "", "partial": _l("Partly refunded"), "full": _l("Refunded")},
)
register_labels(
    "shop_after_sale_kind",
    {"refund_only": _l("Refund only"), "return_refund": _l("Return and refund")},
)
register_labels(
    "shop_after_sale_status",
    {
        "requested": _l("Awaiting review"),
        "approved": _l("Approved"),
        "refused": _l("Refused"),
        "refunding": _l("Refunding"),
        "refunded": _l("Refunded"),
        "cancelled": _l("Cancelled"),
    },
)
register_labels(
    "shop_refund_status",
    {"processing": _l("Refunding"), "success": _l("Refunded"), "failed": _l("Refund failed")},
)
register_labels(
    "shop_refund_failure",
    {
        "abnormal": _l("Refund abnormal: settle it in WeChat Pay's merchant platform"),
        "closed": _l("Refund closed by WeChat Pay"),
        "refused": _l("Refused by WeChat Pay"),
        "no paid payment": _l("No paid payment to refund"),
        "NOT_ENOUGH": _l("the merchant's balance is not enough"),
        "USER_ACCOUNT_ABNORMAL": _l("the payer's account is abnormal"),
        "INVALID_REQUEST": _l("the request does not fit the payment"),
    },
)
register_labels(
    "shop_pay_status",
    {
        "pending": _l("Awaiting payment"),
        "paid": _l("Paid"),
        "closed": _l("Closed"),
        "surplus": _l("Paid twice, returned"),
    },
)
register_labels(
    "shop_recon_kind",
    {
        "missing_here": _l("Paid in WeChat Pay, not here"),
        "missing_there": _l("Paid here, not in WeChat Pay's bill"),
        "amount": _l("Amounts differ"),
        "state": _l("States differ"),
        "refund": _l("Refunds differ"),
        "surplus": _l("Paid twice, not returned"),
    },
)
register_labels(
    "audit_object",
    {
        "shop_order": _l("Order"),
        "shop_after_sale": _l("After-sale request"),
        "shop_reconciliation_issue": _l("Reconciliation issue"),
    },
)
register_labels(
    "job",
    {
        "shop.jobs_aftersale.submit_refund": _l("Send a refund to WeChat Pay"),
        "shop.jobs_aftersale.fulfilment_all": _l("Receive and complete orders"),
        "shop.jobs_aftersale.fulfilment_brand": _l("Receive and complete a brand's orders"),
        "shop.jobs_aftersale.refunds_query_all": _l("Ask WeChat Pay about pending refunds"),
        "shop.jobs_aftersale.refunds_query_brand": _l("Ask WeChat Pay about a brand's refunds"),
        "shop.jobs_aftersale.reconcile_all": _l("Reconcile with WeChat Pay's bill"),
        "shop.jobs_aftersale.reconcile_brand": _l("Reconcile a brand's day"),
        "shop.jobs.release_order": _l("Close an unpaid order at its deadline"),
        "shop.jobs.release_due": _l("Close unpaid orders past their deadline"),
        "shop.jobs.query_pending": _l("Ask WeChat Pay about unconfirmed payments"),
        "shop.jobs.close_attempts": _l("Close a paid order's other payment attempts"),
    },
)
register_labels(
    "audit_action",
    {
        "shop_order_ship": _l("Shipped an order"),
        "shop_order_ready": _l("Made an order ready for pick-up"),
        "shop_order_pickup": _l("Verified a pick-up code"),
        "shop_after_sale_approve": _l("Approved an after-sale request"),
        "shop_after_sale_refuse": _l("Refused an after-sale request"),
        "shop_after_sale_refund": _l("Refunded returned goods"),
        "shop_reconciliation_resolve": _l("Resolved a reconciliation issue"),
    },
)
register_labels(
    "shop_recon_state",
    {
        "paid": _l("Paid"),
        "surplus": _l("Paid twice"),
        "pending": _l("Awaiting payment"),
        "closed": _l("Closed"),
        "none": _l("None"),
        "processing": _l("Refunding"),
        "success": _l("Refunded"),
        "failed": _l("Refund failed"),
        "SUCCESS": _l("Paid"),
        "REFUND": _l("Refunded"),
        "NOTPAY": _l("Not paid"),
        "CLOSED": _l("Closed"),
        "REVOKED": _l("Revoked"),
        "USERPAYING": _l("Paying"),
        "PAYERROR": _l("Payment failed"),
    },
)
register_labels(
    "shop_notify_outcome",
    {
        "applied": _l("Applied"),
        "duplicate": _l("Repeated, ignored"),
        "refused": _l("Refused"),
        "unknown": _l("unknown refund"),
        "order": _l("another order"),
        "amount": _l("another amount"),
        "surplus": _l("Paid twice, being returned"),
        "unknown_order": _l("unknown order"),
        "closed": _l("closed attempt"),
        "transaction": _l("another transaction"),
        "incomplete": _l("incomplete"),
    },
)
