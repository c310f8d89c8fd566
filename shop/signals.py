"""Signals of the shop, for higher packages (guide distribution, games, campaigns).

Every signal is sent with ``sender`` = the brand id and keyword arguments of ids only,
inside the transaction that made the change (a receiver flushes, never commits). A signal
is sent once per change: the state transition that sends it is a conditional UPDATE that
only one caller wins.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: order_id, member_id, store_id, guide_id (the till's guide), channel: an order and its
#: lines were just created (before it is paid; a till order is created paid)
order_created = _signals.signal("shop-order-created")
#: order_id, member_id, store_id, channel
order_paid = _signals.signal("shop-order-paid")
#: order_id, member_id, store_id: the parcel arrived or the order was picked up
order_received = _signals.signal("shop-order-received")
#: order_id, member_id, store_id
order_completed = _signals.signal("shop-order-completed")
#: order_id, refund_id, member_id, amount_fen
order_refunded = _signals.signal("shop-order-refunded")
#: order_id (an unpaid order closed at its deadline or cancelled)
order_closed = _signals.signal("shop-order-closed")
