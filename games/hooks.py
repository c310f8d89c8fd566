"""Signals games listens to: a paid order earns extra plays."""

from __future__ import annotations

import logging

from core.db import db, utcnow
from core.tenancy import use_brand
from shop import signals

log = logging.getLogger(__name__)
_CONNECTED: list[bool] = []


def _order_paid(sender, *, order_id: int, member_id: int | None = None, **_kw) -> None:
    """Extra plays for the order's member; in a savepoint, so that a failure here never
    undoes the payment being recorded."""
    from games import services

    if member_id is None:
        return
    try:
        with use_brand(sender):
            if not services.live_campaigns_rewarding("extra_per_purchase", utcnow()):
                return  # the usual case: no campaign gives plays for purchases
            with db.session.begin_nested():
                services.reward_purchase(order_id=order_id, member_id=member_id)
    except Exception:
        log.exception("games: extra plays for order %s failed", order_id)


def connect() -> None:
    if not _CONNECTED:
        signals.order_paid.connect(_order_paid)
        _CONNECTED.append(True)
