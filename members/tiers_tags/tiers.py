"""Tiers: levels by rolling-12-month spend or growth, the activity ledger, progress.

Upgrades happen at once (on the purchase or growth that crosses a threshold). Downgrades
happen only at the brand's yearly review date, 00:00 in the brand's time zone, applied by
the periodic job ``members.jobs.review_due_tiers``. The 12-month window is calendar-based
in the brand's time zone (the same local date and time one year earlier).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from core.db import UTCDateTime, db, transaction_memo, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from members import signals
from members.models import (
    ACTIVE,
    BASIS_GROWTH,
    BASIS_SPEND,
    GROWTH,
    PURCHASE,
    REFUND,
    Member,
    MemberActivity,
    TierLevel,
    TierSettings,
)
from members.tiers_tags import tags
from org.models import Brand
from wechat import brand_cache, brand_settings


@dataclasses.dataclass(frozen=True, slots=True)
class LevelView:
    """A level as progress shows it (not an ORM object)."""

    id: int
    code: str
    name: str
    rank: int
    threshold: int
    points_multiplier_permille: int


@dataclasses.dataclass(frozen=True)
class TierProgress:
    """Where a member stands: current and next level, value so far and what is still needed."""

    basis: str
    value: int
    current: LevelView | None
    next: LevelView | None
    needed: int
    window_start: dt.datetime
    next_review_on: dt.date


def _brand() -> Brand | brand_cache.BrandKeys:
    """The current brand's time zone holder: the cached brand of a member page's request,
    else the row."""
    bid = require_brand_id()
    return brand_cache.cached(bid) or db.session.get(Brand, bid)


def _year_earlier(when: dt.datetime) -> dt.datetime:
    try:
        return when.replace(year=when.year - 1)
    except ValueError:  # 29 February
        return when.replace(year=when.year - 1, day=28)


def window_start(*, brand: Brand, now: dt.datetime) -> dt.datetime:
    """Start of the rolling 12 months ending at ``now``, computed in the brand's time zone."""
    return _year_earlier(now.astimezone(brand.tz)).astimezone(dt.UTC)


def _review_date(settings: TierSettings, year: int) -> dt.date:
    return dt.date(year, settings.review_month, settings.review_day)


def last_review_date(*, settings: TierSettings, brand: Brand, now: dt.datetime) -> dt.date:
    """The most recent review date on or before the brand-local date of ``now``."""
    today = now.astimezone(brand.tz).date()
    this_year = _review_date(settings, today.year)
    return this_year if this_year <= today else _review_date(settings, today.year - 1)


def get_settings(*, now: dt.datetime | None = None) -> TierSettings:
    """The brand's tier settings to read (member requests: a copy cached in the process,
    ``wechat.brand_settings``), created with defaults on first use (spend, review 1 Jan)."""
    return brand_settings.get(
        "tiers",
        lambda: brand_settings.columns(settings_row(now=now)),
        lambda values: brand_settings.instance(TierSettings, values),
    )


brand_settings.watch(TierSettings, TierLevel)


def settings_row(*, now: dt.datetime | None = None) -> TierSettings:
    """The brand's tier settings row (to change it), created with defaults on first use."""
    settings = db.session.execute(select(TierSettings)).scalar_one_or_none()
    if settings is not None:
        return settings
    brand = _brand()
    defaults = TierSettings(basis=BASIS_SPEND, review_month=1, review_day=1, growth_per_yuan=1)
    # A new brand's first review is the next one, not one already in the past.
    last = last_review_date(settings=defaults, brand=brand, now=now or utcnow())
    ts = utcnow()
    db.session.execute(
        insert(TierSettings)
        .values(
            brand_id=brand.id,
            basis=BASIS_SPEND,
            review_month=1,
            review_day=1,
            growth_per_yuan=1,
            last_review_on=last,
            created_at=ts,
            updated_at=ts,
        )
        .on_conflict_do_nothing(index_elements=["brand_id"])
    )
    return db.session.execute(select(TierSettings)).scalar_one()


def update_settings(
    *,
    basis: str,
    review_month: int,
    review_day: int,
    growth_per_yuan: int = 1,
) -> TierSettings:
    """Change how the brand's tiers work (days 1-28 so every year has the review date)."""
    if basis not in (BASIS_SPEND, BASIS_GROWTH):
        raise ValidationError(_l("basis: spend or growth"), field="basis")
    if not 1 <= review_month <= 12:
        raise ValidationError(_l("month: 1-12"), field="review_month")
    if not 1 <= review_day <= 28:
        raise ValidationError(_l("day: 1-28"), field="review_day")
    if growth_per_yuan < 0:
        raise ValidationError(_l("must not be negative"), field="growth_per_yuan")
    settings = settings_row()
    settings.basis = basis
    settings.review_month = review_month
    settings.review_day = review_day
    settings.growth_per_yuan = growth_per_yuan
    db.session.flush()
    return settings


def list_levels(*, include_inactive: bool = False) -> list[TierLevel]:
    """The brand's levels, lowest rank first (the active ones of a member request: copies
    cached in the process, ``wechat.brand_settings``)."""
    q = select(TierLevel).order_by(TierLevel.rank)
    if include_inactive:
        return list(db.session.execute(q).scalars())
    q = q.where(TierLevel.active.is_(True))
    return brand_settings.get(
        "tier-levels",
        lambda: tuple(brand_settings.columns(lv) for lv in db.session.execute(q).scalars()),
        lambda rows: [brand_settings.instance(TierLevel, values) for values in rows],
    )


def _check_level(code, name, rank, threshold, multiplier) -> None:
    if not code or len(code) > 40:
        raise ValidationError(_l("code: 1-40 characters"), field="code")
    if not name or len(name) > 60:
        raise ValidationError(_l("name: 1-60 characters"), field="name")
    for field, value in (("rank", rank), ("threshold", threshold), ("multiplier", multiplier)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(_l("must be a whole number, not negative"), field=field)


def create_level(
    *,
    code: str,
    name: str,
    rank: int,
    threshold: int,
    points_multiplier_permille: int = 1000,
    birthday_gift: str = "",
    birthday_gift_config: dict | None = None,
) -> TierLevel:
    """Add a level; ``threshold`` in fen (spend basis) or growth value."""
    code, name = (code or "").strip(), (name or "").strip()
    _check_level(code, name, rank, threshold, points_multiplier_permille)
    existing = db.session.execute(
        select(TierLevel).where((TierLevel.code == code) | (TierLevel.rank == rank))
    ).first()
    if existing is not None:
        raise Conflict(_l("a level with this code or rank exists"), field="code")
    level = TierLevel(
        code=code,
        name=name,
        rank=rank,
        threshold=threshold,
        points_multiplier_permille=points_multiplier_permille,
        birthday_gift=birthday_gift or "",
        birthday_gift_config=birthday_gift_config or {},
        active=True,
    )
    db.session.add(level)
    db.session.flush()
    return level


def update_level(*, level_id: int, **changes) -> TierLevel:
    """Change a level's name, threshold, multiplier, birthday gift or active flag."""
    level = db.session.get(TierLevel, level_id)
    if level is None or level.brand_id != require_brand_id():
        raise NotFound(_l("no such level"))
    allowed = {
        "name",
        "threshold",
        "points_multiplier_permille",
        "birthday_gift",
        "birthday_gift_config",
        "active",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))}")
    for k, v in changes.items():
        setattr(level, k, v)
    _check_level(
        level.code, level.name, level.rank, level.threshold, level.points_multiplier_permille
    )
    db.session.flush()
    return level


def level_for(value: int, levels: list[TierLevel]) -> TierLevel | None:
    """The highest level whose threshold ``value`` reaches."""
    best = None
    for level in levels:
        if level.threshold <= value and (best is None or level.rank > best.rank):
            best = level
    return best


def member_value(
    *, member_id: int, now: dt.datetime | None = None, settings: TierSettings | None = None
) -> int:
    """Rolling-12-month spend (fen) or growth of a member, per the brand's basis."""
    basis = (settings or get_settings()).basis
    return _value(basis=basis, member_id=member_id, now=now or utcnow(), brand=_brand())


def _locked_member(member_id: int) -> Member:
    """The member, its row locked until the transaction ends (a purchase's activity and its
    upgrade lock it once)."""
    locked = transaction_memo("tiers_locked_members")
    member = locked.get(member_id)
    if member is None:
        member = db.session.execute(
            select(Member).where(Member.id == member_id).with_for_update()
        ).scalar_one_or_none()
    if member is None or member.status != ACTIVE:
        raise NotFound(_l("no such member"))
    locked[member_id] = member
    return member


def evaluate_upgrade(*, member_id: int, now: dt.datetime | None = None) -> TierLevel | None:
    """Raise the member to the level their value reaches (never lowers). Returns new level."""
    now = now or utcnow()
    member = _locked_member(member_id)
    levels = list_levels()
    target = level_for(member_value(member_id=member_id, now=now), levels)
    current = next((lv for lv in levels if lv.id == member.tier_id), None)
    if target is None or (current is not None and target.rank <= current.rank):
        return None
    old = member.tier_id
    member.tier_id = target.id
    member.tier_since = now
    db.session.flush()
    signals.tier_changed.send(
        member.brand_id,
        member_id=member.id,
        old_tier_id=old,
        new_tier_id=target.id,
        reason="upgrade",
    )
    return target


def _record(
    *,
    member_id: int,
    kind: str,
    amount_fen: int,
    growth: int,
    store_id: int | None,
    occurred_at: dt.datetime,
    idempotency_key: str,
    note: str,
) -> tuple[MemberActivity, bool]:
    if not idempotency_key or len(idempotency_key) > 120:
        raise ValidationError(_l("idempotency key: 1-120 characters"), field="idempotency_key")
    if occurred_at.tzinfo is None:
        raise ValidationError(_l("time zone missing"), field="occurred_at")
    _locked_member(member_id)
    made = db.session.scalars(
        insert(MemberActivity)
        .values(
            brand_id=require_brand_id(),
            member_id=member_id,
            kind=kind,
            amount_fen=amount_fen,
            growth=growth,
            store_id=store_id,
            idempotency_key=idempotency_key,
            note=note[:200],
            occurred_at=occurred_at,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "idempotency_key"])
        .returning(MemberActivity)
    ).first()
    if made is None:
        existing = db.session.execute(
            select(MemberActivity).where(MemberActivity.idempotency_key == idempotency_key)
        ).scalar_one()
        if (existing.member_id, existing.kind, existing.amount_fen, existing.growth) != (
            member_id,
            kind,
            amount_fen,
            growth,
        ):
            raise Conflict(_l("this key was used for another event"), field="idempotency_key")
        return existing, False
    return made, True


def _positive(value: int, field: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValidationError(_l("must be a positive whole number"), field=field)


# The member row is locked already (_record); the latest purchase wins, a late one does not.
_LAST_PURCHASE = (
    text(
        "UPDATE member SET last_purchase_at = GREATEST(last_purchase_at, :at) WHERE id = :id"
        " RETURNING last_purchase_at"
    )
    .bindparams(bindparam("at", type_=UTCDateTime))
    .columns(last_purchase_at=UTCDateTime)
)


def record_purchase(
    *,
    member_id: int,
    amount_fen: int,
    store_id: int | None,
    occurred_at: dt.datetime,
    idempotency_key: str,
    note: str = "",
) -> tuple[MemberActivity, bool]:
    """Record a purchase once per key; upgrades at once and sets behaviour tags."""
    _positive(amount_fen, "amount_fen")
    growth = amount_fen // 100 * get_settings().growth_per_yuan
    activity, created = _record(
        member_id=member_id,
        kind=PURCHASE,
        amount_fen=amount_fen,
        growth=growth,
        store_id=store_id,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
        note=note,
    )
    if created:
        latest = db.session.execute(
            _LAST_PURCHASE, {"id": member_id, "at": occurred_at}
        ).scalar_one()
        tags.apply_system_tag(member_id=member_id, code="purchased")
        if store_id is not None:
            tags.apply_system_tag(member_id=member_id, code="visited_store")
        tags.purchased(member_id=member_id, latest=latest)
        evaluate_upgrade(member_id=member_id)
        signals.purchase_recorded.send(
            require_brand_id(),
            member_id=member_id,
            activity_id=activity.id,
            amount_fen=amount_fen,
            store_id=store_id,
        )
    return activity, created


def record_refund(
    *,
    member_id: int,
    amount_fen: int,
    store_id: int | None,
    occurred_at: dt.datetime,
    idempotency_key: str,
    note: str = "",
) -> tuple[MemberActivity, bool]:
    """Record a refund (positive ``amount_fen``, stored negative); never downgrades at once."""
    _positive(amount_fen, "amount_fen")
    growth = amount_fen // 100 * get_settings().growth_per_yuan
    return _record(
        member_id=member_id,
        kind=REFUND,
        amount_fen=-amount_fen,
        growth=-growth,
        store_id=store_id,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
        note=note,
    )


def add_growth(
    *,
    member_id: int,
    growth: int,
    occurred_at: dt.datetime,
    idempotency_key: str,
    note: str = "",
) -> tuple[MemberActivity, bool]:
    """Add growth value (tasks, check-ins...) once per key; upgrades at once."""
    _positive(growth, "growth")
    activity, created = _record(
        member_id=member_id,
        kind=GROWTH,
        amount_fen=0,
        growth=growth,
        store_id=None,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
        note=note,
    )
    if created:
        evaluate_upgrade(member_id=member_id)
    return activity, created


def assign_base_level(*, member: Member, value: int | None = None) -> None:
    """Give a member without a level the level their value reaches (at least the base one);
    ``value``: the member's value when the caller knows it (0 for a member just created)."""
    if member.tier_id is None:
        if value is None:
            value = member_value(member_id=member.id, settings=get_settings())
        level = base_level(value=value)
        if level is not None:
            member.tier_id = level.id
            member.tier_since = utcnow()


def base_level(*, value: int) -> TierLevel | None:
    """The level a member without one gets for ``value`` (at least the base one), or None."""
    get_settings()  # created with the defaults on first use, as always
    return level_for(value, list_levels())


_ma = MemberActivity.__table__.c
_WINDOW = (
    _ma.member_id == bindparam("member_id"),
    _ma.brand_id == bindparam("brand_id"),
    _ma.occurred_at > bindparam("start"),
    _ma.occurred_at <= bindparam("now"),
)
# A member's rolling value by each basis, built once (Core: the brand is in the WHERE).
_VALUE = {
    BASIS_SPEND: select(func.coalesce(func.sum(_ma.amount_fen), 0)).where(*_WINDOW),
    BASIS_GROWTH: select(func.coalesce(func.sum(_ma.growth), 0)).where(*_WINDOW),
}


def _level_view(level: TierLevel) -> LevelView:
    return LevelView(
        level.id,
        level.code,
        level.name,
        level.rank,
        level.threshold,
        level.points_multiplier_permille,
    )


def _value(*, basis: str, member_id: int, now: dt.datetime, brand) -> int:
    """``member_value`` in one prepared statement (pending changes flushed first, as an ORM
    query would: this member's activity just recorded)."""
    params = {
        "member_id": member_id,
        "brand_id": brand.id,
        "start": window_start(brand=brand, now=now),
        "now": now,
    }
    if db.session.autoflush:
        db.session.flush()
    return int(db.session.connection().execute(_VALUE[basis], params).scalar_one())


def value_query(*, now: dt.datetime) -> tuple[Select, dict]:
    """The statement of ``member_value`` by the brand's basis and its parameters other than
    ``member_id`` and ``brand_id`` (for a page that reads it with other figures)."""
    basis = get_settings(now=now).basis
    return _VALUE[basis], {"start": window_start(brand=_brand(), now=now), "now": now}


def tier_progress(
    *, member_id: int, now: dt.datetime | None = None, member=None, value: int | None = None
) -> TierProgress:
    """Current level, next level and the amount still needed to reach it (``member``: the
    member already read, anything with ``id``, ``brand_id`` and ``tier_id``; ``value``: the
    member's value when the caller read it with ``value_query`` at the same ``now``)."""
    now = now or utcnow()
    if member is None or member.id != member_id:
        member = db.session.get(Member, member_id)
    if member is None or member.brand_id != require_brand_id():
        raise NotFound(_l("no such member"))
    brand = _brand()
    settings = get_settings(now=now)  # member pages: cached in the process, as the levels
    basis = settings.basis
    if value is None:
        value = _value(basis=basis, member_id=member_id, now=now, brand=brand)
    levels = [_level_view(lv) for lv in list_levels()]
    current = next((lv for lv in levels if lv.id == member.tier_id), None)
    rank = current.rank if current else -1
    higher = [lv for lv in levels if lv.rank > rank]
    nxt = min(higher, key=lambda lv: lv.rank) if higher else None
    last = last_review_date(settings=settings, brand=brand, now=now)
    return TierProgress(
        basis=basis,
        value=value,
        current=current,
        next=nxt,
        needed=max(0, nxt.threshold - value) if nxt else 0,
        window_start=window_start(brand=brand, now=now),
        next_review_on=_review_date(settings, last.year + 1),
    )


def review_tiers(*, now: dt.datetime | None = None, force: bool = False) -> int:
    """The yearly review of the current brand: every member gets the level their rolling
    value reaches, down as well as up. Runs once per review date unless ``force``.
    Returns how many members changed level."""
    now = now or utcnow()
    settings, brand = settings_row(now=now), _brand()
    due = last_review_date(settings=settings, brand=brand, now=now)
    if not force and settings.last_review_on is not None and settings.last_review_on >= due:
        return 0
    col = MemberActivity.amount_fen if settings.basis == BASIS_SPEND else MemberActivity.growth
    start = window_start(brand=brand, now=now)
    value = (
        select(func.coalesce(func.sum(col), 0))
        .where(
            MemberActivity.member_id == Member.id,
            MemberActivity.occurred_at > start,
            MemberActivity.occurred_at <= now,
        )
        .correlate(Member)
        .scalar_subquery()
    )
    target = (
        select(TierLevel.id)
        .where(
            TierLevel.brand_id == brand.id,
            TierLevel.active.is_(True),
            TierLevel.threshold <= value,
        )
        .order_by(TierLevel.rank.desc())
        .limit(1)
        .scalar_subquery()
    )
    result = db.session.execute(
        update(Member)
        .where(Member.status == ACTIVE, Member.tier_id.is_distinct_from(target))
        .values(tier_id=target, tier_since=now)
        .execution_options(synchronize_session=False)
    )
    settings.last_review_on = due
    db.session.flush()
    db.session.expire_all()
    return result.rowcount
