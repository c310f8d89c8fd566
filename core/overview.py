"""The console's data overview (数据概览): figures and charts that packages register here.

Core knows no members, points or coupons; each package registers a provider with
``register(fn, order=..)``. ``fn(period=..., scope=...)`` returns a ``Section`` (or None when
it has nothing for this viewer) built from SQL aggregates over the period's dates; the
dashboard renders whatever is registered, in ``order``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Callable

PERIODS = {"today": 1, "7d": 7, "30d": 30}
TREND_MIN_DAYS = 7  # "today" still draws a week of trend


@dataclasses.dataclass(frozen=True)
class Period:
    """``days`` brand-calendar days ending today, and the same number of days before them."""

    key: str
    days: int
    today: dt.date
    tz: zoneinfo.ZoneInfo

    @property
    def start(self) -> dt.date:
        return self.today - dt.timedelta(days=self.days - 1)

    @property
    def end(self) -> dt.date:
        """The day after the period (exclusive bound)."""
        return self.today + dt.timedelta(days=1)

    @property
    def prev_start(self) -> dt.date:
        return self.start - dt.timedelta(days=self.days)

    @property
    def trend_start(self) -> dt.date:
        return self.end - dt.timedelta(days=max(self.days, TREND_MIN_DAYS))

    @property
    def window_start(self) -> dt.date:
        """The first day any figure or trend of the page needs."""
        return min(self.prev_start, self.trend_start)

    def utc(self, day: dt.date) -> dt.datetime:
        """The UTC instant a brand-calendar day starts."""
        local = dt.datetime.combine(day, dt.time(), tzinfo=self.tz)
        return local.astimezone(dt.UTC)

    def trend_days(self) -> list[dt.date]:
        n = (self.end - self.trend_start).days
        return [self.trend_start + dt.timedelta(days=i) for i in range(n)]


def make_period(key: str, *, now: dt.datetime, tz: zoneinfo.ZoneInfo) -> Period:
    """The period named ``key`` (today, 7d, 30d) as the brand's calendar sees ``now``."""
    return Period(key, PERIODS[key], now.astimezone(tz).date(), tz)


@dataclasses.dataclass(frozen=True)
class Scope:
    """Whose figures: the whole brand, or one store's (a store manager's)."""

    store_id: int | None = None


@dataclasses.dataclass(frozen=True)
class Figure:
    label: object
    value: int
    previous: int | None = None
    unit: str = ""  # "%" for a rate given in per-mille
    hint: object = ""
    key: str = ""

    @property
    def change_permille(self) -> int | None:
        """The change against the previous period, per mille of it (None: nothing before)."""
        if self.previous is None or self.previous == 0:
            return None
        return (self.value - self.previous) * 1000 // abs(self.previous)

    @property
    def display(self) -> str:
        if self.unit == "%":
            return f"{self.value / 10:.1f}%"
        return f"{self.value:,}"


@dataclasses.dataclass
class Section:
    title: object
    figures: list[Figure] = dataclasses.field(default_factory=list)
    charts: list[dict] = dataclasses.field(default_factory=list)
    key: str = ""


Provider = Callable[..., Section | None]
_PROVIDERS: list[tuple[int, str, Provider]] = []


def register(fn: Provider, *, order: int = 50) -> None:
    """Add a provider of one overview section (registering the same function twice is a no-op)."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    if any(n == name for _, n, _ in _PROVIDERS):
        return
    _PROVIDERS.append((order, name, fn))
    _PROVIDERS.sort(key=lambda p: (p[0], p[1]))


def build(*, period: Period, scope: Scope) -> list[Section]:
    """Every registered section for this period and scope, in order."""
    sections = []
    for _, _, fn in _PROVIDERS:
        section = fn(period=period, scope=scope)
        if section is not None:
            sections.append(section)
    return sections


def totals(rows, period: Period, column: int) -> tuple[int, int]:
    """A column of per-day rows (day first) summed over the period and over the one before."""
    cur = sum(int(r[column] or 0) for r in rows if period.start <= r[0] < period.end)
    prev = sum(int(r[column] or 0) for r in rows if period.prev_start <= r[0] < period.start)
    return cur, prev


def daily(rows, days: list[dt.date], *columns: str) -> list[dict]:
    """Rows of (day, value...) spread over ``days`` with zeros where a day had none."""
    by_day = {r[0]: r[1:] for r in rows}
    out = []
    for day in days:
        values = by_day.get(day, (0,) * len(columns))
        item = {"day": day.strftime("%m-%d")}
        item.update({c: int(v or 0) for c, v in zip(columns, values, strict=True)})
        out.append(item)
    return out
