"""Earning rules, bonus campaigns and expiry dates, per brand.

All arithmetic is on integers. Points for a purchase are

    floor(amount_fen * earn_permille * tier_permille * bonus_permille / (100 * 1000**3))

where ``earn_permille`` is the brand's points per yuan in thousandths, ``tier_permille`` the
member's tier multiplier and ``bonus_permille`` the best matching campaign's (campaigns do
not stack: the highest multiplier wins). The daily cap then limits what one member earns on
one day of the brand's calendar.
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.db import db
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from org.services import list_stores
from points.models import (
    EXPIRE_MONTHS,
    EXPIRE_NEVER,
    EXPIRE_POINTS_DAY,
    EXPIRE_YEAR_END,
    POLICIES,
    PointsCampaign,
    PointsSettings,
)
from wechat import brand_cache, brand_settings

PERMILLE = 1000
MAX_PERMILLE = 100_000  # 100x: anything above is a typing mistake
SETTINGS_FIELDS = {
    "earn_permille": (0, MAX_PERMILLE),
    "pending_days": (0, 90),
    "expiry_months": (1, 120),
    "points_day": (1, 28),
    "remind_days": (0, 60),
    "daily_cap": (0, 10_000_000),
    "exchange_points": (1, 1_000_000),
    "exchange_fen": (0, 100_000_000),
    "welcome_points": (0, 1_000_000),
}


def brand_tz() -> zoneinfo.ZoneInfo:
    """The current brand's time zone."""
    return brand_cache.tz_of(require_brand_id())


def get_settings() -> PointsSettings:
    """The current brand's rules to read (member requests: a copy cached in the process,
    ``wechat.brand_settings``), created with the product defaults on first use."""
    return brand_settings.get(
        "points",
        lambda: brand_settings.columns(settings_row()),
        lambda v: brand_settings.instance(PointsSettings, v),
    )


brand_settings.watch(PointsSettings)


def settings_row() -> PointsSettings:
    """The current brand's rules row (to change it), created with the defaults on first use."""
    bid = require_brand_id()
    row = db.session.execute(select(PointsSettings)).scalar_one_or_none()
    if row is not None:
        return row
    # Two first requests may race: the loser's insert is a no-op and it reads the winner's row.
    stmt = pg_insert(PointsSettings).values(brand_id=bid)
    db.session.execute(stmt.on_conflict_do_nothing(index_elements=["brand_id"]))
    return db.session.execute(select(PointsSettings)).scalar_one()


def update_settings(**values) -> PointsSettings:
    """Change the current brand's rules; every value is checked before anything is written."""
    settings = settings_row()
    clean = {}
    for name, value in values.items():
        if name in SETTINGS_FIELDS:
            low, high = SETTINGS_FIELDS[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValidationError(
                    _l("Enter a whole number from %(low)d to %(high)d.", low=low, high=high),
                    field=name,
                )
        elif name == "expiry_policy":
            if value not in POLICIES:
                raise ValidationError(_l("Unknown expiry policy."), field=name)
        elif name in ("change_template_id", "expiring_template_id"):
            value = (value or "").strip()
            if len(value) > 64:
                raise ValidationError(_l("At most 64 characters."), field=name)
        else:
            raise ValidationError(f"unknown setting {name}", field=name)
        clean[name] = value
    for name, value in clean.items():
        setattr(settings, name, value)
    db.session.flush()
    return settings


# --- campaigns --------------------------------------------------------------------------------


def save_campaign(
    *,
    campaign_id: int | None = None,
    name: str,
    multiplier_permille: int,
    start_date: dt.date,
    end_date: dt.date,
    weekdays: int = 0,
    store_id: int | None = None,
    category: str | None = None,
    active: bool = True,
) -> PointsCampaign:
    """Create or change a bonus campaign of the current brand."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationError(_l("A name of 1 to 80 characters is required."), field="name")
    if not isinstance(multiplier_permille, int) or not (
        PERMILLE < multiplier_permille <= MAX_PERMILLE
    ):
        raise ValidationError(
            _l("The multiplier must be above 1 and at most 100."), field="multiplier_permille"
        )
    if start_date is None or end_date is None or end_date < start_date:
        raise ValidationError(
            _l("The end date must not be before the start date."), field="end_date"
        )
    if not 0 <= weekdays < 128:
        raise ValidationError(_l("Unknown weekdays."), field="weekdays")
    if store_id is not None and not list_stores(store_id=store_id):
        raise NotFound(_l("Unknown store."), field="store_id")
    category = (category or "").strip() or None
    if campaign_id is None:
        campaign = PointsCampaign()
        db.session.add(campaign)
    else:
        campaign = db.session.get(PointsCampaign, campaign_id)
        if campaign is None or campaign.brand_id != require_brand_id():
            raise NotFound(_l("Unknown campaign."))
    campaign.name = name
    campaign.multiplier_permille = multiplier_permille
    campaign.start_date = start_date
    campaign.end_date = end_date
    campaign.weekdays = weekdays
    campaign.store_id = store_id
    campaign.category = category
    campaign.active = active
    db.session.flush()
    return campaign


def best_campaign(
    *, local_day: dt.date, store_id: int | None, category: str | None
) -> PointsCampaign | None:
    """The active campaign with the highest multiplier for this day, store and category (an
    unsaved copy of it). Every purchase asks: member requests and the till find the brand's
    campaigns not over yet cached in the process (``wechat.brand_settings``); a purchase of
    an earlier day (a till order sent late) reads that day's from the database."""
    since = _campaigns_since()
    if local_day >= since:
        rows = brand_settings.get("points-campaigns", lambda: _campaigns_until(since))
    else:
        rows = _campaigns_until(local_day)
    best = None
    bit = 1 << local_day.weekday()
    for c in rows:
        if not c["start_date"] <= local_day <= c["end_date"]:
            continue
        if c["weekdays"] and not c["weekdays"] & bit:
            continue
        if c["store_id"] is not None and c["store_id"] != store_id:
            continue
        if c["category"] is not None and c["category"] != category:
            continue
        if best is None or c["multiplier_permille"] > best["multiplier_permille"]:
            best = c
    return brand_settings.instance(PointsCampaign, best) if best is not None else None


def _campaigns_since() -> dt.date:
    """The first day whose campaigns are cached: yesterday in UTC, so that it is never after
    today in any brand's time zone."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def _campaigns_until(day: dt.date) -> tuple[dict, ...]:
    """The brand's active campaigns that end on ``day`` or later, as column values."""
    rows = db.session.execute(
        select(PointsCampaign).where(
            PointsCampaign.active.is_(True), PointsCampaign.end_date >= day
        )
    ).scalars()
    return tuple(brand_settings.columns(c) for c in rows)


brand_settings.watch(PointsCampaign)


def purchase_points(
    *, amount_fen: int, earn_permille: int, tier_permille: int, bonus_permille: int
) -> int:
    """Points for a purchase before the daily cap (rounded down)."""
    return (amount_fen * earn_permille * tier_permille * bonus_permille) // (100 * PERMILLE**3)


# --- expiry dates -----------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def _local_midnight(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def expiry_for(
    *, earned_at: dt.datetime, settings: PointsSettings, tz: zoneinfo.ZoneInfo
) -> dt.datetime | None:
    """When points earned at ``earned_at`` expire under the brand's policy (None: never).

    ``months``: at the same local time of day N months later. ``year_end``: at midnight ending
    the year in which "earning + N months" falls. ``points_day``: at midnight ending the first
    points day on or after "earning + N months", so members still have that day to use them.
    """
    policy, months = settings.expiry_policy, settings.expiry_months
    if policy == EXPIRE_NEVER:
        return None
    local = earned_at.astimezone(tz)
    target = add_months(local.date(), months)
    if policy == EXPIRE_MONTHS:
        return dt.datetime.combine(
            target, local.timetz().replace(tzinfo=None), tzinfo=tz
        ).astimezone(dt.UTC)
    if policy == EXPIRE_YEAR_END:
        return _local_midnight(dt.date(target.year + 1, 1, 1), tz)
    if policy == EXPIRE_POINTS_DAY:
        day = settings.points_day
        candidate = target.replace(day=day)
        if candidate < target:
            candidate = add_months(candidate, 1)
        return _local_midnight(candidate + dt.timedelta(days=1), tz)
    raise ValueError(f"unknown expiry policy {policy}")


def local_day(when: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    """The brand-calendar date of a UTC timestamp."""
    return when.astimezone(tz).date()


def ensure_settings_row(brand_id: int) -> None:
    """Insert the default rules for a brand that has none (used by the demo)."""
    exists = db.session.execute(
        select(PointsSettings.id)
        .where(PointsSettings.brand_id == brand_id)
        .execution_options(all_brands=True)
    ).first()
    if exists is None:
        db.session.execute(insert(PointsSettings).values(brand_id=brand_id))


__all__ = [
    "EXPIRE_MONTHS",
    "EXPIRE_NEVER",
    "EXPIRE_POINTS_DAY",
    "EXPIRE_YEAR_END",
    "best_campaign",
    "expiry_for",
    "get_settings",
    "purchase_points",
    "save_campaign",
    "update_settings",
]
