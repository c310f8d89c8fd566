"""Errors of the coupon engine (rendered as 4xx by the one error handler)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.errors import Conflict, Forbidden, NotFound, ValidationError


class CouponUnavailable(NotFound):
    """Unknown code, another brand's code, or another member's coupon: one answer for all,
    so that no response tells a valid code from an invalid one."""

    code = "coupon_unavailable"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("This coupon cannot be used."), field="code", **kw)


class CouponAlreadyRedeemed(Conflict):
    code = "coupon_redeemed"


class CouponExpired(Conflict):
    code = "coupon_expired"


class CouponNotUsable(Conflict):
    """Valid coupon, wrong place or order: another store, out of scope, not yet valid."""

    code = "coupon_not_usable"


class NotStackable(Conflict):
    """The order already used a coupon, and this one or that one does not combine."""

    code = "coupon_not_stackable"


class BelowThreshold(ValidationError):
    code = "below_threshold"


class SoldOut(Conflict):
    code = "sold_out"


class LimitReached(Conflict):
    code = "limit_reached"


class NotEligible(Forbidden):
    code = "not_eligible"
