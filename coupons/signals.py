"""What coupons announce to the packages above it (campaign attribution, reports).

Every signal is sent with ``sender`` = the brand id and keyword arguments of ids and
amounts only, inside the transaction that made the change (a receiver flushes, never
commits), so a receiver's writes commit or roll back with the change itself.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# coupon_id, redemption_id, member_id, order_amount_fen, discount_fen
coupon_redeemed = _signals.signal("coupons-coupon-redeemed")
# coupon_id, redemption_id, member_id, order_amount_fen, discount_fen
redemption_reversed = _signals.signal("coupons-redemption-reversed")
