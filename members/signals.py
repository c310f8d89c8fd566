"""Signals of the members package, for higher packages (points, coupons, campaigns).

Every signal is sent with ``sender`` = the brand id and keyword arguments of ids only,
inside the transaction that made the change (a receiver flushes, never commits).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: member_id, created (bool), store_id, guide_id, source
member_activated = _signals.signal("member-activated")
#: member_id, store_id, guide_id, source: an existing member scanned a store's or guide's code
member_scanned = _signals.signal("member-scanned")
#: kept_id, merged_id, counts
member_merged = _signals.signal("member-merged")
#: member_id
member_deleted = _signals.signal("member-deleted")
#: member_id, old_tier_id, new_tier_id, reason ("upgrade" | "review")
tier_changed = _signals.signal("member-tier-changed")
#: member_id, activity_id, amount_fen, store_id
purchase_recorded = _signals.signal("member-purchase-recorded")
