"""The console's form of the shop rules."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange

from core.formfields import YuanField
from shop.settings import RANGES


def _whole(field: str):
    low, high = RANGES[field]
    return [InputRequired(), NumberRange(min=low, max=high)]


class ShopSettingsForm(FlaskForm):
    points_per_yuan = IntegerField(
        _l("Points worth 1 yuan at checkout"), validators=_whole("points_per_yuan")
    )
    max_points_percent = IntegerField(
        _l("Points pay at most this share of the amount after coupons (percent)"),
        validators=_whole("max_points_percent"),
    )
    pay_timeout_minutes = IntegerField(
        _l("Minutes to pay before an order closes"), validators=_whole("pay_timeout_minutes")
    )
    allow_delivery = BooleanField(_l("Delivery"))
    allow_pickup = BooleanField(_l("Pick-up in store"))
    shipping_fee = YuanField(_l("Shipping fee (yuan)"), validators=[InputRequired()])
    free_shipping = YuanField(
        _l("Free shipping from (yuan, 0: never)"), validators=[InputRequired()]
    )
    shipping_by_region = TextAreaField(
        _l("Shipping fee by province (one per line, e.g. 新疆 20)"),
        validators=[Length(max=2000)],
    )
    auto_receive_days = IntegerField(
        _l("Days after shipping before a parcel counts as received"),
        validators=_whole("auto_receive_days"),
    )
    auto_complete_days = IntegerField(
        _l("Days after receipt before an order completes"),
        validators=_whole("auto_complete_days"),
    )
    return_window_days = IntegerField(
        _l("Days after completion for after-sale requests"),
        validators=_whole("return_window_days"),
    )
