"""Store coordinates for "stores near me" (org's Store has none; members owns the table).

Coordinates are GCJ-02 (what ``wx.getLocation`` returns in China) stored as integer
micro-degrees (``members.models.StoreLocation``). Distances are great-circle (haversine)
metres computed in Python: a brand has at most a few thousand stores.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.db import db
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from members.models import StoreLocation
from org.models import Store

EARTH_RADIUS_M = 6_371_000
E6 = 1_000_000
# Where a store in China can be: the ranges do not overlap, so a pasted pair's order (经度,纬度
# from Amap, 纬度,经度 from Tencent's picker) is never ambiguous.
CHINA_LNG = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
# What the coordinate field says when it cannot use what was typed (also shown by the map's
# script as it is typed).
MESSAGES = {
    "empty": _l("Paste the coordinates as longitude,latitude, e.g. 121.473701,31.230416."),
    "bad": _l(
        "These are not coordinates: paste two numbers, longitude,latitude, "
        "e.g. 121.473701,31.230416."
    ),
    "outside": _l(
        "These coordinates are not in China: the longitude must be between 73 and 136 "
        "and the latitude between 3 and 54."
    ),
}
_SEPARATORS = re.compile(r"[\s,;:、/|()\[\]经纬度坐标]*")


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


def parse_coordinates(text: str | None) -> tuple[float, float]:
    """(lat, lng) from coordinates as pasted from a map's coordinate picker: "经度,纬度" or
    "纬度,经度", a half- or full-width comma, spaces; inside China or a clear error."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw:
        raise ValidationError(MESSAGES["empty"], field="coords")
    numbers = _NUMBER.findall(raw)
    rest = _NUMBER.sub(" ", raw)
    if len(numbers) != 2 or not _SEPARATORS.fullmatch(rest):
        raise ValidationError(MESSAGES["bad"], field="coords")
    a, b = (float(n) for n in numbers)

    def inside(lng: float, lat: float) -> bool:
        return CHINA_LNG[0] <= lng <= CHINA_LNG[1] and CHINA_LAT[0] <= lat <= CHINA_LAT[1]

    if inside(a, b):
        return b, a
    if inside(b, a):
        return a, b
    raise ValidationError(MESSAGES["outside"], field="coords")


def format_coordinates(lat: float, lng: float) -> str:
    """The "经度,纬度" text the coordinate field shows."""
    return f"{lng:.6f},{lat:.6f}"


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
