"""What member pages of any package share: ``/m/<brand_slug>`` blueprints bound to the
brand of their URL, and the links (slots) other packages add to the member's card page.

Points and coupons use both::

    bp = member_blueprint(Blueprint("points_member", __name__, url_prefix="/m/<brand_slug>"))
    register_center_slot(
        "points", _l("My points"), "points_member.my_points", order=10,
        figure=queries.AVAILABLE_POINTS,
    )

A slot with a ``figure`` also shows that number (points balance, usable coupons) at the top
of the card page: the members package shows figures of higher packages without importing them.
A figure is a query, not a number: a one-column SELECT built once, with the bind parameters
``:member_id``, ``:brand_id`` (it states the brand itself: the card page reads every slot's
figure in one Core statement, past the ORM's brand scoping) and, if it needs the time,
``:now``.
The signed-in member of such a page comes from ``members.session``. ``g.brand`` is the brand
as cached for every request (``wechat.brand_cache.BrandKeys``: id, slug, name, time zone), not
an ORM object; a page that changes the brand loads it. A guest on a page that
needs a member (``require_member()``, or any ``abort(401)`` in a member blueprint) is sent
to the member center's WeChat sign-in and activation, with ``next`` back to the page asked
for; JSON APIs (``/api/...``) are not member blueprints and keep answering 401.
"""

from __future__ import annotations

import dataclasses

from flask import Blueprint, abort, g, redirect, request, session, url_for
from sqlalchemy import Select, select

from core.db import db, utcnow
from core.errors import register_error_page
from core.tenancy import require_brand_id, set_brand
from members import session as member_session
from wechat import brand_cache


@dataclasses.dataclass(frozen=True)
class CenterSlot:
    key: str
    title: object
    endpoint: str
    order: int
    figure: Select | None = None
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
    figure: Select | None = None,
    figure_label=None,
) -> None:
    """Show a link (points, coupons, games, shop...) on the member's card page.

    ``endpoint`` takes ``brand_slug`` as its only URL argument; ``title`` is a lazy string.
    ``figure``, if given, is a one-column SELECT of one number for the member (parameters
    ``:member_id``, ``:brand_id``, ``:now``), shown on the card under ``figure_label``.
    """
    CENTER_SLOTS[key] = CenterSlot(key, title, endpoint, order, figure, figure_label or title)


def center_slots() -> list[CenterSlot]:
    return sorted(CENTER_SLOTS.values(), key=lambda s: (s.order, s.key))


# the slots' figures -> the one statement that reads them all
_FIGURES: dict[tuple[Select, ...], Select] = {}


def card_figures(
    member_id: int, *, extra: tuple[Select, ...], params: dict | None = None
) -> tuple[list[tuple[CenterSlot, int]], list]:
    """The slots' figures and the values of ``extra`` one-column SELECTs (parameters
    ``:member_id``, ``:brand_id`` and ``params``) for this member, in one statement."""
    slots = [s for s in center_slots() if s.figure is not None]
    figures = tuple(s.figure for s in slots) + extra
    if not figures:
        return [], []
    stmt = _FIGURES.get(figures)
    if stmt is None:
        stmt = _FIGURES[figures] = select(*(f.scalar_subquery() for f in figures))
    values = {"member_id": member_id, "brand_id": require_brand_id(), "now": utcnow()}
    row = db.session.connection().execute(stmt, values | (params or {})).one()
    shown = [(s, int(v or 0)) for s, v in zip(slots, row[: len(slots)], strict=True)]
    return shown, list(row[len(slots) :])


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


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a plain path inside this brand's member center, else None: never
    another site (``//host``, ``https:``, a backslash), never a control character."""
    if not value or len(value) > 2000 or g.get("brand") is None:
        return None
    root = f"/m/{g.brand.slug}"
    if not (value == root or value.startswith(root + "/") or value.startswith(root + "?")):
        return None
    if "//" in value or "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return value


def _next_key() -> str:
    return f"member_next:{g.brand.id}"


def remember_next(value: str | None) -> None:
    """Keep a safe ``next`` through the WeChat sign-in round trip (it leaves the site)."""
    if nxt := safe_next(value):
        session[_next_key()] = nxt


def pop_next() -> str | None:
    """The page a guest asked for before signing in, once."""
    return safe_next(session.pop(_next_key(), None))


def signin_url() -> str:
    """The sign-in and activation entry, coming back to this page afterwards: for a GET the
    page itself, for a form post the page it was posted from (when that is ours)."""
    if request.method == "GET":
        nxt = request.full_path.rstrip("?")
    else:
        ref = request.referrer or ""
        host = request.host_url.rstrip("/")
        nxt = ref[len(host) :] if ref.startswith(host + "/") else None
    nxt = safe_next(nxt)
    if nxt == url_for("members_center.card"):
        nxt = None  # where the sign-in lands anyway
    return url_for("members_activate.start", **({"next": nxt} if nxt else {}))


def require_member() -> int:
    """The signed-in member's id; a guest is sent to sign in (and back here afterwards)."""
    mid = member_session.current_member_id()
    if mid is None:
        abort(redirect(signin_url(), 303 if request.method != "GET" else 302))
    return mid


def _guest_to_signin(_exc):
    return redirect(signin_url(), 303 if request.method != "GET" else 302)


def member_blueprint(bp: Blueprint) -> Blueprint:
    """Bind a ``/m/<brand_slug>`` blueprint to the brand of its URL (404 for an unknown or
    inactive brand), fill ``brand_slug`` in its ``url_for`` calls, and send a guest who
    meets a 401 on its pages to sign in."""
    bp.url_value_preprocessor(_bind_brand)
    bp.url_defaults(_add_brand)
    bp.register_error_handler(401, _guest_to_signin)
    return bp
