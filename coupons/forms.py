"""Console forms of the coupon engine."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from core.formfields import YuanField, fen_to_yuan, yuan_to_fen  # noqa: F401 - re-exported
from core.pickers import PickerField
from coupons.labels import KIND


def _words(text: str | None) -> list[str]:
    return [w.strip() for w in (text or "").split(",") if w.strip()]


def _to_utc(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """A time typed in the brand's time zone, in UTC."""
    return value.replace(tzinfo=tz).astimezone(dt.UTC) if value else None


def _to_local(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    return value.astimezone(tz).replace(tzinfo=None) if value else None


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=list(KIND.items()))
    value = YuanField(_l("Value (yuan)"), default="0")
    threshold = YuanField(_l("Minimum order (yuan)"), default="0")
    percent_off = IntegerField(_l("Percent off"), default=0, validators=[NumberRange(0, 99)])
    cap = YuanField(_l("Maximum discount (yuan, 0 = none)"), default="0")
    gift_name = StringField(_l("Gift"), validators=[Optional(), Length(max=120)])
    valid_from = DateTimeLocalField(_l("Valid from"), validators=[Optional()])
    valid_until = DateTimeLocalField(_l("Valid until"), validators=[Optional()])
    valid_days = IntegerField(
        _l("Or valid for N days after issue"), validators=[Optional(), NumberRange(1, 3650)]
    )
    store_ids = PickerField(
        _l("Only in stores (empty = every store)"),
        kind="stores",
        unknown=_l("No such store: %(ids)s."),
    )
    categories = StringField(_l("Only for categories (comma separated)"), validators=[Optional()])
    product_ids = StringField(
        _l("Only for products (ids, comma separated)"), validators=[Optional()]
    )
    stock = IntegerField(
        _l("Stock (empty = unlimited)"), validators=[Optional(), NumberRange(0, 10**9)]
    )
    per_member_limit = IntegerField(
        _l("Per member (0 = no limit)"), default=0, validators=[NumberRange(0, 1000)]
    )
    per_day_limit = IntegerField(
        _l("Per member per day (0 = no limit)"), default=0, validators=[NumberRange(0, 1000)]
    )
    stackable = BooleanField(_l("Can be combined with other coupons"))
    shareable = BooleanField(_l("Can be given to a friend"), default=True)
    active = BooleanField(_l("Offered"), default=True)
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])

    def validate_valid_days(self, field):
        if not field.data and not self.valid_until.data:
            raise ValidationError(_l("Give an end date or a number of days."))

    def fill(self, tpl, tz: zoneinfo.ZoneInfo) -> None:
        """Show a template's amounts in yuan, its dates in the brand's time and lists as text."""
        self.value.data = fen_to_yuan(tpl.value_fen)
        self.threshold.data = fen_to_yuan(tpl.threshold_fen)
        self.cap.data = fen_to_yuan(tpl.cap_fen)
        self.valid_from.data = _to_local(tpl.valid_from, tz)
        self.valid_until.data = _to_local(tpl.valid_until, tz)
        self.categories.data = ",".join(tpl.categories or [])
        self.product_ids.data = ",".join(str(i) for i in tpl.product_ids or [])

    def values(self, tz: zoneinfo.ZoneInfo) -> dict:
        """The keyword arguments of ``coupons.services.create_template`` / ``update_template``."""
        return {
            "name": self.name.data,
            "kind": self.kind.data,
            "value_fen": self.value.fen,
            "threshold_fen": self.threshold.fen,
            "percent_off": self.percent_off.data,
            "cap_fen": self.cap.fen,
            "gift_name": self.gift_name.data or "",
            "description": self.description.data or "",
            "valid_from": _to_utc(self.valid_from.data, tz),
            "valid_until": _to_utc(self.valid_until.data, tz),
            "valid_days": self.valid_days.data,
            "store_ids": list(self.store_ids.data or []),
            "categories": _words(self.categories.data),
            "product_ids": _words(self.product_ids.data),
            "stock": self.stock.data,
            "per_member_limit": self.per_member_limit.data or 0,
            "per_day_limit": self.per_day_limit.data or 0,
            "stackable": bool(self.stackable.data),
            "shareable": bool(self.shareable.data),
            "active": bool(self.active.data),
        }


class IssueForm(FlaskForm):
    member_ids = PickerField(
        _l("Members (empty = the segment below)"),
        kind="members",
        placeholder=_l("Name, card number or whole phone number"),
    )
    tier_ids = PickerField(_l("Tiers"), kind="tiers")
    store_ids = PickerField(_l("Home stores"), kind="stores")
    tag_ids = PickerField(_l("Tags"), kind="tags")
    request_key = StringField(validators=[DataRequired(), Length(max=64)])

    def target(self) -> dict:
        """The members to issue to: picked members, or the segment of tiers, stores, tags."""
        t: dict = {}
        for name in ("member_ids", "tier_ids", "store_ids", "tag_ids"):
            ids = list(getattr(self, name).data or [])
            if ids:
                t[name] = ids
        return t


class ImportForm(FlaskForm):
    file = FileField(_l("Codes file (one code a line)"), validators=[FileRequired()])


class MallItemForm(FlaskForm):
    template_id = SelectField(_l("Coupon"), coerce=int)
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=120)])
    price_points = IntegerField(
        _l("Price in points"), validators=[DataRequired(), NumberRange(1, 10**8)]
    )
    stock = IntegerField(
        _l("Stock (empty = unlimited)"), validators=[Optional(), NumberRange(0, 10**9)]
    )
    per_member_limit = IntegerField(
        _l("Per member (0 = no limit)"), default=0, validators=[NumberRange(0, 1000)]
    )
    tier_ids = PickerField(_l("Only for tiers (empty = everyone)"), kind="tiers")
    active = BooleanField(_l("Offered"), default=True)

    def fill(self, item) -> None:
        self.tier_ids.data = list(item.tier_ids or [])

    def values(self) -> dict:
        """The keyword arguments of ``coupons.services.create_mall_item`` / ``update_mall_item``."""
        return {
            "template_id": self.template_id.data,
            "title": self.title.data,
            "price_points": self.price_points.data,
            "stock": self.stock.data,
            "per_member_limit": self.per_member_limit.data or 0,
            "tier_ids": list(self.tier_ids.data or []),
            "active": bool(self.active.data),
        }


class PosKeyForm(FlaskForm):
    store_id = SelectField(_l("Store"), coerce=int)
    label = StringField(_l("Label"), validators=[Optional(), Length(max=80)])


class RedeemForm(FlaskForm):
    code = StringField(_l("Coupon code"), validators=[DataRequired(), Length(max=64)])
    order_id = StringField(_l("Order number"), validators=[DataRequired(), Length(max=64)])
    amount = YuanField(_l("Order amount (yuan)"), validators=[DataRequired()])
    store_id = SelectField(_l("Store"), coerce=int, validators=[Optional()])
    request_key = StringField(validators=[DataRequired(), Length(max=64)])
