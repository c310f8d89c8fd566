"""The brand dashboard's own daily rollup: members' purchases per brand-local day and store.

Kept in the transaction that pays or refunds (``campaigns.dashboard`` receives the shop's
``order_paid`` / ``order_refunded`` signals), at the grain of the shop's own sales rollup
(day and store), so the dashboard never groups a brand's orders on a page view:

* ``orders``, ``paid_fen``: members' orders paid that day; ``refunded_fen``: money returned
  to members that day;
* ``new_customers``: members whose first paid order it was; ``returning_customers``:
  members who had bought before, counted once a day (at the first store they bought at).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, ForeignKey

from core.db import BigId, db

customer_day_rollup = db.Table(
    "campaign_customer_day",
    db.metadata,
    Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("store_key", BigId, primary_key=True),  # the store id, 0: none
    Column("orders", BigInteger, nullable=False, default=0),
    Column("paid_fen", BigInteger, nullable=False, default=0),
    Column("refunded_fen", BigInteger, nullable=False, default=0),
    Column("new_customers", BigInteger, nullable=False, default=0),
    Column("returning_customers", BigInteger, nullable=False, default=0),
)
