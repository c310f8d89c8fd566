"""What member pages of any package share: ``/m/<brand_slug>`` blueprints bound to the
brand of their URL, and the links (slots) other packages add to the member's card page.

Points and coupons use both::

    bp = member_blueprint(Blueprint("points_member", __name__, url_prefix="/m/<brand_slug>"))
    register_center_slot(
        "points", _l("My points"), "points_member.my_points", order=10,
        figure=lambda member_id: queries.balance(member_id).balance,
    )

A slot with a ``figure`` also shows that number (points balance, usable coupons) at the top
of the card page: the members package shows figures of higher packages without importing them.
The signed-in member of such a page comes from ``members.session``. ``g.brand`` is the brand
as cached for every request (``wechat.brand_cache.BrandKeys``: id, slug, name, time zone), not
an ORM object; a page that changes the brand loads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from flask import Blueprint, abort, g

from core.errors import register_error_page
from core.tenancy import set_brand
from wechat import brand_cache


@dataclasses.dataclass(frozen=True)
class CenterSlot:
    key: str
    title: object
    endpoint: str
    order: int
    figure: Callable[[int], int] | None = None
    figure_label: object = None


CENTER_SLOTS: dict[str, CenterSlot] = {}

# A member who meets an error sees it in the member center's own shell, not the console's.
register_error_page("/m/", "members/member/error.html")


def register_center_slot(
    key: str,
    title,
    endpoint: str,
    order: int = 50,
    *,
    figure: Callable[[int], int] | None = None,
    figure_label=None,
) -> None:
    """Show a link (points, coupons, games, shop...) on the member's card page.

    ``endpoint`` takes ``brand_slug`` as its only URL argument; ``title`` is a lazy string.
    ``figure(member_id)``, if given, is a number shown on the card under ``figure_label``.
    """
    CENTER_SLOTS[key] = CenterSlot(key, title, endpoint, order, figure, figure_label or title)


def center_slots() -> list[CenterSlot]:
    return sorted(CENTER_SLOTS.values(), key=lambda s: (s.order, s.key))


def center_figures(member_id: int) -> list[tuple[CenterSlot, int]]:
    """The figures the slots give for this member (points balance, usable coupons...)."""
    return [(s, s.figure(member_id)) for s in center_slots() if s.figure is not None]


def _bind_brand(_endpoint, values):
    # The brand comes from the process's cache, checked against Redis on every request
    # (wechat.brand_cache): no database round trip, no secret decrypted per page.
    slug = values.pop("brand_slug", None) if values else None
    brand = brand_cache.current(slug) if slug else None
    if brand is None:
        abort(404)
    g.brand, g.brand_id, g.brand_tz = brand, brand.id, brand.timezone
    g._brand_token = set_brand(brand.id)


def _add_brand(_endpoint, values):
    if "brand_slug" not in values and g.get("brand") is not None:
        values["brand_slug"] = g.brand.slug


def member_blueprint(bp: Blueprint) -> Blueprint:
    """Bind a ``/m/<brand_slug>`` blueprint to the brand of its URL (404 for an unknown or
    inactive brand) and fill ``brand_slug`` in its ``url_for`` calls."""
    bp.url_value_preprocessor(_bind_brand)
    bp.url_defaults(_add_brand)
    return bp
