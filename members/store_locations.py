"""Store coordinates for "stores near me" (org's Store has none; members owns this table).

Coordinates are GCJ-02 (what ``wx.getLocation`` returns in China) stored as integer
micro-degrees, so no float rounding creeps into the table. Distances are great-circle
(haversine) metres computed in Python: a brand has at most a few thousand stores, and this
keeps SQLite (``make run``) and PostgreSQL alike.
"""

from __future__ import annotations

import dataclasses
import math

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from core.cli import demo_step
from core.db import BigId, IdMixin, TimestampMixin, db
from core.errors import NotFound, ValidationError
from core.tenancy import BrandScoped, require_brand_id, use_brand
from org.models import Brand, Store

EARTH_RADIUS_M = 6_371_000
E6 = 1_000_000


class StoreLocation(IdMixin, TimestampMixin, BrandScoped, db.Model):
    """Where a store is, in micro-degrees (one row per store)."""

    __tablename__ = "store_location"
    __table_args__ = (
        UniqueConstraint("store_id"),
        CheckConstraint("lat_e6 BETWEEN -90000000 AND 90000000", name="lat_range"),
        CheckConstraint("lng_e6 BETWEEN -180000000 AND 180000000", name="lng_range"),
    )

    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("store.id", ondelete="CASCADE"))
    lat_e6: Mapped[int] = mapped_column(BigInteger)
    lng_e6: Mapped[int] = mapped_column(BigInteger)


@dataclasses.dataclass(frozen=True)
class NearbyStore:
    store: Store
    lat: float
    lng: float
    distance_m: int


def _check(lat: float, lng: float) -> tuple[int, int]:
    for name, value, limit in (("lat", lat, 90), ("lng", lng, 180)):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValidationError(_l("a number is expected"), field=name)
        if not math.isfinite(value) or not -limit <= value <= limit:
            raise ValidationError(_l("coordinate out of range"), field=name)
    return round(lat * E6), round(lng * E6)


def set_store_location(*, store_id: int, lat: float, lng: float) -> StoreLocation:
    """Set (or move) a store of the current brand on the map."""
    lat_e6, lng_e6 = _check(lat, lng)
    store = db.session.get(Store, store_id)
    if store is None or store.brand_id != require_brand_id():
        raise NotFound(_l("no such store"))
    row = db.session.execute(
        select(StoreLocation).where(StoreLocation.store_id == store_id)
    ).scalar_one_or_none()
    if row is None:
        row = StoreLocation(store_id=store_id)
        db.session.add(row)
    row.lat_e6, row.lng_e6 = lat_e6, lng_e6
    db.session.flush()
    return row


def clear_store_location(*, store_id: int) -> bool:
    """Take a store of the current brand off the map; whether it was on it."""
    row = db.session.execute(
        select(StoreLocation).where(StoreLocation.store_id == store_id)
    ).scalar_one_or_none()
    if row is None:
        return False
    db.session.delete(row)
    db.session.flush()
    return True


def locations() -> dict[int, tuple[float, float]]:
    """Every located store of the current brand: store id -> (lat, lng)."""
    return {
        row.store_id: (row.lat_e6 / E6, row.lng_e6 / E6)
        for row in db.session.execute(select(StoreLocation)).scalars()
    }


def location_of(*, store_id: int) -> tuple[float, float] | None:
    """(lat, lng) of a store of the current brand, or None."""
    row = db.session.execute(
        select(StoreLocation).where(StoreLocation.store_id == store_id)
    ).scalar_one_or_none()
    return (row.lat_e6 / E6, row.lng_e6 / E6) if row else None


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> int:
    """Great-circle distance in whole metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))))


def stores_near(*, lat: float, lng: float) -> list[NearbyStore]:
    """The current brand's open stores with coordinates, nearest first."""
    _check(lat, lng)
    rows = db.session.execute(
        select(Store, StoreLocation)
        .join(StoreLocation, StoreLocation.store_id == Store.id)
        .where(Store.active.is_(True))
    ).all()
    out = []
    for store, loc in rows:
        slat, slng = loc.lat_e6 / E6, loc.lng_e6 / E6
        out.append(NearbyStore(store, slat, slng, distance_m(lat, lng, slat, slng)))
    out.sort(key=lambda n: (n.distance_m, n.store.id))
    return out


DEMO_COORDS = {
    "SH001": (31.229500, 121.455600),  # 南京西路
    "SH002": (31.236000, 121.502000),  # 陆家嘴
    "HZ001": (30.259000, 120.164000),  # 西湖
}


@demo_step(32)
def demo_store_locations() -> list[str]:
    """The demo stores on the map (idempotent)."""
    brand = Brand.by_slug("demo")
    if brand is None:
        return []
    placed = 0
    with use_brand(brand.id):
        for code, (lat, lng) in DEMO_COORDS.items():
            store = Store.by_code(code)
            if store is not None:
                set_store_location(store_id=store.id, lat=lat, lng=lng)
                placed += 1
    return [f"Store locations: {placed} demo stores on the map"]
