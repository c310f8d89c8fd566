"""Console forms of games: a campaign's settings and its prize table."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    FieldList,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms import Form as PlainForm
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from core.formfields import YuanField, fen_to_yuan
from core.pickers import PickerField
from games.labels import GAME_KIND, PRIZE_KIND

PRIZE_ROWS = 12


def _to_local(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    return value.astimezone(tz).replace(tzinfo=None) if value else None


def _to_utc(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    return value.replace(tzinfo=tz).astimezone(dt.UTC) if value else None


def _int_or_none(value):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class PrizeRow(PlainForm):
    """One line of the prize table (a line with no name is left out)."""

    name = StringField(_l("Prize"), validators=[Optional(), Length(max=60)])
    kind = SelectField(_l("Type"), choices=list(PRIZE_KIND.items()), default="none")
    value = YuanField(_l("Value (yuan)"), default="0")
    coupon_template_id = SelectField(_l("Coupon"), choices=[], coerce=_int_or_none)
    points = IntegerField(_l("Points"), validators=[Optional(), NumberRange(0, 1_000_000)])
    weight = IntegerField(_l("Weight"), validators=[Optional(), NumberRange(0, 1_000_000)])
    stock = IntegerField(_l("Stock"), validators=[Optional(), NumberRange(0, 10_000_000)])
    daily_cap = IntegerField(_l("Per day"), validators=[Optional(), NumberRange(1, 10_000_000)])
    fallback = SelectField(_l("When out, goes to"), choices=[], coerce=_int_or_none)
    streak_day = IntegerField(_l("Streak day"), validators=[Optional(), NumberRange(1, 31)])


class CampaignForm(FlaskForm):
    kind = SelectField(_l("Game"), choices=list(GAME_KIND.items()))
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    starts_at = DateTimeLocalField(_l("Starts"), validators=[DataRequired()])
    ends_at = DateTimeLocalField(_l("Ends"), validators=[DataRequired()])
    tier_ids = PickerField(_l("Only tiers (empty = all)"), kind="tiers")
    tag_ids = PickerField(_l("Only members with tags (empty = all)"), kind="tags")
    store_ids = PickerField(_l("Only members of stores (empty = all)"), kind="stores")
    cost_points = IntegerField(
        _l("Points per play"), default=0, validators=[Optional(), NumberRange(0, 100_000)]
    )
    free_per_day = IntegerField(
        _l("Free plays per day"), default=1, validators=[Optional(), NumberRange(0, 100)]
    )
    extra_per_purchase = IntegerField(
        _l("Extra plays per paid order"), default=0, validators=[Optional(), NumberRange(0, 100)]
    )
    extra_per_checkin = IntegerField(
        _l("Extra plays per daily check-in"),
        default=0,
        validators=[Optional(), NumberRange(0, 100)],
    )
    plays_per_day = IntegerField(
        _l("Plays per member per day (empty = no limit)"),
        validators=[Optional(), NumberRange(1, 100_000)],
    )
    plays_total = IntegerField(
        _l("Plays per member in all (empty = no limit)"),
        validators=[Optional(), NumberRange(1, 100_000)],
    )
    wins_per_day = IntegerField(
        _l("Prizes per member per day (empty = no limit)"),
        validators=[Optional(), NumberRange(1, 100_000)],
    )
    wins_total = IntegerField(
        _l("Prizes per member in all (empty = no limit)"),
        validators=[Optional(), NumberRange(1, 100_000)],
    )
    budget = YuanField(_l("Budget for prizes (yuan, empty = none)"), default="")
    checkin_cycle = IntegerField(
        _l("Check-in streak cycle (days)"), default=7, validators=[Optional(), NumberRange(1, 31)]
    )
    claim_days = IntegerField(
        _l("Days to claim a gift"), default=30, validators=[Optional(), NumberRange(1, 365)]
    )
    pickup_store_ids = PickerField(_l("Gift pick-up stores (empty = any)"), kind="stores")
    contact = StringField(_l("Organiser's contact"), validators=[DataRequired(), Length(max=200)])
    prizes = FieldList(FormField(PrizeRow), min_entries=PRIZE_ROWS, max_entries=PRIZE_ROWS)

    def set_choices(self, templates: list[tuple[int, str]]) -> None:
        """The coupons and fallback lines the prize table offers."""
        coupons = [("", _l("Choose a coupon"))] + [(str(i), name) for i, name in templates]
        fallbacks = [("", _l("Thanks for playing"))] + [
            (str(n), _l("Line %(n)d", n=n)) for n in range(1, PRIZE_ROWS + 1)
        ]
        for row in self.prizes:
            row.coupon_template_id.choices = coupons
            row.fallback.choices = fallbacks

    def fill(self, campaign, prizes, tz: zoneinfo.ZoneInfo) -> None:
        """Show a campaign's times in the brand's time, amounts in yuan, its prize table."""
        self.starts_at.data = _to_local(campaign.starts_at, tz)
        self.ends_at.data = _to_local(campaign.ends_at, tz)
        self.budget.data = "" if campaign.budget_fen is None else fen_to_yuan(campaign.budget_fen)
        position = {p.id: p.position for p in prizes}
        for row, prize in zip(self.prizes, prizes, strict=False):
            row.form.name.data = prize.name
            row.form.kind.data = prize.kind
            row.form.value.data = fen_to_yuan(prize.value_fen)
            row.form.coupon_template_id.data = prize.coupon_template_id
            row.form.points.data = prize.points or None
            row.form.weight.data = prize.weight
            row.form.stock.data = prize.stock
            row.form.daily_cap.data = prize.daily_cap
            row.form.fallback.data = position.get(prize.fallback_prize_id)
            row.form.streak_day.data = prize.streak_day

    def values(self, tz: zoneinfo.ZoneInfo) -> dict:
        """The settings for ``games.services.create_campaign`` / ``update_campaign``."""
        return {
            "name": self.name.data,
            "description": self.description.data or "",
            "starts_at": _to_utc(self.starts_at.data, tz),
            "ends_at": _to_utc(self.ends_at.data, tz),
            "tier_ids": self.tier_ids.data or [],
            "tag_ids": self.tag_ids.data or [],
            "store_ids": self.store_ids.data or [],
            "pickup_store_ids": self.pickup_store_ids.data or [],
            "cost_points": self.cost_points.data or 0,
            "free_per_day": self.free_per_day.data or 0,
            "extra_per_purchase": self.extra_per_purchase.data or 0,
            "extra_per_checkin": self.extra_per_checkin.data or 0,
            "plays_per_day": self.plays_per_day.data,
            "plays_total": self.plays_total.data,
            "wins_per_day": self.wins_per_day.data,
            "wins_total": self.wins_total.data,
            "budget_fen": self.budget.fen if (self.budget.data or "").strip() else None,
            "checkin_cycle": self.checkin_cycle.data or 7,
            "claim_days": self.claim_days.data or 30,
            "contact": self.contact.data,
        }

    def filled_lines(self) -> list[int]:
        """Indexes of the prize table's lines that have a name (the others are left out)."""
        return [i for i, row in enumerate(self.prizes) if (row.form.name.data or "").strip()]

    def prize_rows(self) -> list[dict]:
        """The prize table's filled lines, renumbered in order (fallbacks follow)."""
        lines = self.filled_lines()
        position = {line + 1: n + 1 for n, line in enumerate(lines)}
        rows = []
        for line in lines:
            f = self.prizes[line].form
            rows.append(
                {
                    "name": f.name.data,
                    "kind": f.kind.data,
                    "value_fen": f.value.fen,
                    "coupon_template_id": f.coupon_template_id.data,
                    "points": f.points.data or 0,
                    "weight": f.weight.data or 0,
                    "stock": f.stock.data,
                    "daily_cap": f.daily_cap.data,
                    "fallback": position.get(f.fallback.data, f.fallback.data and 0),
                    "streak_day": f.streak_day.data,
                }
            )
        return rows


class PreviewForm(FlaskForm):
    """Play once as a test member (nothing is taken or granted)."""
