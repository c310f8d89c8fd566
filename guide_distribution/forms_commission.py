"""Forms of the commission pages: rules, tier steps, the commission settings, withdrawals."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, Length, NumberRange

from core.formfields import YuanField
from guide_distribution.settings import RANGES


class RuleForm(FlaskForm):
    kind = SelectField(
        _l("Kind of rule"),
        choices=[
            ("sku_fixed", _l("Fixed amount per unit of a SKU")),
            ("sku_rate", _l("Rate of a SKU")),
            ("category_rate", _l("Rate of a category")),
        ],
    )
    target = StringField(
        _l("SKU code or category code"), validators=[InputRequired(), Length(max=60)]
    )
    rate = StringField(_l("Rate (percent, for rates)"), validators=[Length(max=10)])
    amount = YuanField(_l("Amount per unit (yuan, for fixed amounts)"))


class TierForm(FlaskForm):
    name = StringField(_l("Step name"), validators=[InputRequired(), Length(max=60)])
    target = YuanField(_l("Monthly performance target (yuan)"), validators=[InputRequired()])
    rate = StringField(
        _l("Rate past the target (percent)"), validators=[InputRequired(), Length(max=10)]
    )


def _whole(field: str):
    low, high = RANGES[field]
    return [InputRequired(), NumberRange(min=low, max=high)]


class CommissionSettingsForm(FlaskForm):
    default_rate = StringField(
        _l("Default commission rate (percent)"), validators=[InputRequired(), Length(max=10)]
    )
    commission_on_promotions = BooleanField(_l("Promotion and flash-sale items earn commission"))
    settle_after_days = IntegerField(
        _l("Days after completion before commission settles"),
        validators=_whole("settle_after_days"),
    )
    payout_min = YuanField(_l("Least amount paid out (yuan)"), validators=[InputRequired()])
    approval_over = YuanField(
        _l("Payouts above this need approval (yuan)"), validators=[InputRequired()]
    )


class WithdrawForm(FlaskForm):
    amount = YuanField(_l("Amount to withdraw (yuan)"), validators=[InputRequired()])
    request_key = StringField(validators=[Length(max=60)])
