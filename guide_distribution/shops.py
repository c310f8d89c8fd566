"""Guides' mini-shops: the guide's profile (face, intro), the products they pick from the
catalog with a line about each, the share link and the mini-program code that carry the
guide, and what happens when a customer opens them.

How a shop is reached, and why neither can be forged:

* the share link (H5) ``/m/<brand>/guide/<token>``: ``token`` is the brand id and the guide
  id signed with the app's secret (``itsdangerous``); a changed token fails its signature,
  and a valid one of another brand answers 404 on this brand's pages;
* the mini-program code: its scene (WeChat allows at most 32 characters) is ``g=`` and the
  guide's random token (``GuideProfile.token``, 16 letters and digits, unique), looked up in
  the current brand only: a guessed, changed or foreign scene finds nobody.

Opening either records a ``GuideVisit`` (the last open per member and guide, which credits
the guide for ``link_days``) and applies the brand's binding rules (source ``share_link``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import string

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from core import storage
from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from guide_distribution import binding
from guide_distribution.attribution import active_guide
from guide_distribution.models import GuideProfile, GuideShopItem, GuideVisit
from org.models import Staff
from shop import catalog_queries
from shop.models import Product
from wechat import gateway

TOKEN_LETTERS = string.ascii_letters + string.digits
TOKEN_LENGTH = 16
SCENE_PREFIX = "g="
INTRO_MAX = 200
LINE_MAX = 120
MAX_ITEMS = 60
SHARE_SALT = "guide-shop-share"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SHARE_SALT)


# --- profiles ---------------------------------------------------------------------------------


def profile_of(guide_id: int) -> GuideProfile | None:
    return db.session.execute(
        select(GuideProfile).where(GuideProfile.guide_id == guide_id)
    ).scalar_one_or_none()


def ensure_profile(*, guide_id: int) -> GuideProfile:
    """The guide's profile, made (with a new random token) on first use. Flushes."""
    guide = binding.own_guide(guide_id)
    row = profile_of(guide.id)
    if row is not None:
        return row
    token = "".join(secrets.choice(TOKEN_LETTERS) for _ in range(TOKEN_LENGTH))
    db.session.execute(
        insert(GuideProfile)
        .values(
            brand_id=require_brand_id(),
            guide_id=guide.id,
            token=token,
            intro="",
            updated_at=utcnow(),
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["brand_id", "guide_id"])
    )
    return profile_of(guide.id)


def update_profile(*, guide_id: int, intro: str, photo: bytes | None = None) -> GuideProfile:
    """The guide's intro and, when given, a new face picture (validated, re-encoded)."""
    intro = (intro or "").strip()
    if len(intro) > INTRO_MAX:
        raise ValidationError(_l("At most %(n)d characters.", n=INTRO_MAX), field="intro")
    row = ensure_profile(guide_id=guide_id)
    if photo:
        row.photo_key = storage.save_image(
            photo, prefix=f"guides/b{require_brand_id()}", field="photo"
        )
    row.intro = intro
    db.session.flush()
    return row


# --- the shop's products ----------------------------------------------------------------------


def _own_item(guide_id: int, item_id: int) -> GuideShopItem:
    item = db.session.get(GuideShopItem, item_id) if item_id else None
    if item is None or item.brand_id != require_brand_id() or item.guide_id != guide_id:
        raise NotFound(_l("no such product in your shop"))
    return item


def _line(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > LINE_MAX:
        raise ValidationError(_l("At most %(n)d characters.", n=LINE_MAX), field="line")
    return text


def add_item(*, guide_id: int, product_id: int, line: str = "") -> GuideShopItem:
    """Put a product on sale into the guide's shop, last; an existing one gets the new line."""
    guide = binding.own_guide(guide_id)
    line = _line(line)
    product = db.session.execute(
        catalog_queries.listed_products().where(Product.id == product_id)
    ).scalar_one_or_none()
    if product is None:
        raise NotFound(_l("This product is not on sale."), field="product")
    existing = db.session.execute(
        select(GuideShopItem).where(
            GuideShopItem.guide_id == guide.id, GuideShopItem.product_id == product.id
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.line = line or existing.line
        db.session.flush()
        return existing
    count, last = db.session.execute(
        select(func.count(), func.coalesce(func.max(GuideShopItem.sort), 0)).where(
            GuideShopItem.guide_id == guide.id
        )
    ).one()
    if count >= MAX_ITEMS:
        raise ValidationError(_l("At most %(n)d products in a shop.", n=MAX_ITEMS), field="product")
    item = GuideShopItem(guide_id=guide.id, product_id=product.id, line=line, sort=last + 1)
    db.session.add(item)
    ensure_profile(guide_id=guide.id)
    db.session.flush()
    return item


def update_item(*, guide_id: int, item_id: int, line: str) -> GuideShopItem:
    item = _own_item(guide_id, item_id)
    item.line = _line(line)
    db.session.flush()
    return item


def remove_item(*, guide_id: int, item_id: int) -> None:
    db.session.delete(_own_item(guide_id, item_id))
    db.session.flush()


def move_item(*, guide_id: int, item_id: int, up: bool) -> None:
    """Swap the product with its neighbour above (or below)."""
    item = _own_item(guide_id, item_id)
    col = GuideShopItem.sort
    stmt = select(GuideShopItem).where(GuideShopItem.guide_id == guide_id)
    stmt = (
        stmt.where(col < item.sort).order_by(col.desc())
        if up
        else stmt.where(col > item.sort).order_by(col)
    )
    other = db.session.execute(stmt.limit(1)).scalar_one_or_none()
    if other is not None:
        item.sort, other.sort = other.sort, item.sort
        db.session.flush()


@dataclasses.dataclass(frozen=True)
class ShopLine:
    item: GuideShopItem
    card: catalog_queries.Card


def shop_lines(guide_id: int, *, listed_only: bool = True) -> list[ShopLine]:
    """The guide's products in order with their price cards (only those on sale now when
    ``listed_only``: a product taken off sale drops out of the shop by itself)."""
    items = list(
        db.session.execute(
            select(GuideShopItem)
            .where(GuideShopItem.guide_id == guide_id)
            .order_by(GuideShopItem.sort, GuideShopItem.id)
        ).scalars()
    )
    if not items:
        return []
    stmt = (catalog_queries.listed_products() if listed_only else select(Product)).where(
        Product.id.in_([i.product_id for i in items])
    )
    products = {p.id: p for p in db.session.execute(stmt).scalars()}
    cards = {c.product.id: c for c in catalog_queries.cards(list(products.values()))}
    return [ShopLine(i, cards[i.product_id]) for i in items if i.product_id in cards]


def search_products(q: str, *, limit: int = 30) -> list[Product]:
    """Products on sale whose name or code holds ``q`` (what a guide may pick)."""
    stmt = catalog_queries.listed_products().order_by(Product.sort.desc(), Product.id.desc())
    q = (q or "").strip()[:60]
    if q:
        stmt = stmt.where(Product.name.ilike(f"%{q}%") | (Product.code == q))
    return list(db.session.execute(stmt.limit(limit)).scalars())


# --- share link and mini-program code ---------------------------------------------------------


def share_token(guide_id: int) -> str:
    """The signed token of the guide's share link (carries the brand and the guide)."""
    return _serializer().dumps([require_brand_id(), guide_id])


def guide_of_share_token(token: str) -> Staff:
    """The active guide a share token names, of the current brand; NotFound otherwise."""
    try:
        data = _serializer().loads(token or "")
    except BadSignature:
        raise NotFound(_l("This link is not valid.")) from None
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in data)
        or data[0] != require_brand_id()
    ):
        raise NotFound(_l("This link is not valid."))
    guide = active_guide(data[1])
    if guide is None:
        raise NotFound(_l("This guide's shop is closed."))
    return guide


def scene_of(profile: GuideProfile) -> str:
    return SCENE_PREFIX + profile.token


def guide_of_scene(scene: str) -> Staff:
    """The active guide whose mini-program code carries ``scene``, in the current brand."""
    scene = scene or ""
    token = scene[len(SCENE_PREFIX) :] if scene.startswith(SCENE_PREFIX) else ""
    if len(token) != TOKEN_LENGTH or not all(c in TOKEN_LETTERS for c in token):
        raise NotFound(_l("This code is not valid."), field="scene")
    guide_id = db.session.execute(
        select(GuideProfile.guide_id).where(GuideProfile.token == token)
    ).scalar()
    guide = active_guide(guide_id)
    if guide is None:
        raise NotFound(_l("This code is not valid."), field="scene")
    return guide


def ensure_wxacode(*, guide_id: int) -> GuideProfile:
    """Ask WeChat for the guide's mini-program code once and keep the picture (the caller
    handles the gateway's errors). Flushes."""
    profile = ensure_profile(guide_id=guide_id)
    if profile.wxacode_key:
        return profile
    png = gateway.get_wxacode_unlimited(require_brand_id(), scene_of(profile))
    profile.wxacode_key = storage.put(
        png, content_type="image/png", prefix=f"guides/b{require_brand_id()}/code"
    )
    db.session.flush()
    return profile


# --- visits -----------------------------------------------------------------------------------


def record_visit(
    *, member_id: int, guide_id: int, new_customer: bool | None = None, now=None
) -> binding.Outcome:
    """A member opened the guide's shop: the last visit (upsert) and the binding rules."""
    now = now or utcnow()
    db.session.execute(
        insert(GuideVisit)
        .values(
            brand_id=require_brand_id(),
            member_id=member_id,
            guide_id=guide_id,
            first_at=now,
            last_at=now,
        )
        .on_conflict_do_update(
            index_elements=["brand_id", "member_id", "guide_id"],
            set_={"last_at": func.greatest(GuideVisit.last_at, now)},
        )
    )
    return binding.bind(
        member_id=member_id,
        guide_id=guide_id,
        source="share_link",
        new_customer=new_customer,
        now=now,
    )


def last_visit(member_id: int, guide_id: int) -> dt.datetime | None:
    return db.session.execute(
        select(GuideVisit.last_at).where(
            GuideVisit.member_id == member_id, GuideVisit.guide_id == guide_id
        )
    ).scalar()
