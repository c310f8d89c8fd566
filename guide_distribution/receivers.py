"""What guide distribution does when lower packages announce something: a member scanned a
guide's or store's code, a member card was activated (by a guide, or after a share link
opened before the member existed), the cashier chose a guide at the till, two members were
merged. Receivers flush, never commit; a binding refused by the rules is no error."""

from __future__ import annotations

from flask import has_request_context, session

from core.errors import AppError
from guide_distribution import binding, shops
from members import signals as member_signals
from members.merge import register_merge_handler
from shop import signals as shop_signals
from shop.models import TILL

PENDING_KEY = "gd_share:{}"


def remember_share(brand_id: int, guide_id: int) -> None:
    """A guest opened a guide's share link: remember the guide for their activation."""
    session[PENDING_KEY.format(brand_id)] = guide_id


def _pending_share(brand_id: int) -> int | None:
    if not has_request_context():
        return None
    value = session.pop(PENDING_KEY.format(brand_id), None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _quietly(fn, **kwargs) -> None:
    try:
        fn(**kwargs)
    except AppError:
        pass  # a member gone or merged meanwhile: nothing to bind


def _on_scanned(brand_id, *, member_id, store_id=None, guide_id=None, source="", **_):
    _quietly(binding.bind, member_id=member_id, guide_id=guide_id, store_id=store_id, source="scan")


def _on_activated(brand_id, *, member_id, created=False, store_id=None, guide_id=None, **_):
    shared = _pending_share(brand_id)
    if shared is not None:
        _quietly(shops.record_visit, member_id=member_id, guide_id=shared, new_customer=created)
    if guide_id or store_id:
        _quietly(
            binding.bind,
            member_id=member_id,
            guide_id=guide_id,
            store_id=store_id,
            source="activation",
            new_customer=created,
            fresh=created,
        )


def _on_order_created(brand_id, *, member_id=None, guide_id=None, channel=None, **_):
    if channel == TILL and member_id and guide_id:
        _quietly(binding.bind, member_id=member_id, guide_id=guide_id, source="till")


def connect() -> None:
    member_signals.member_scanned.connect(_on_scanned)
    member_signals.member_activated.connect(_on_activated)
    # After attribution's receiver (connected first): the order keeps what was decided.
    shop_signals.order_created.connect(_on_order_created)
    register_merge_handler(binding.merge_bindings)
