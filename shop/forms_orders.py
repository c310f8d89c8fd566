"""Console forms of orders, after-sale and pick-up."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token."""


class ShipForm(FlaskForm):
    carrier = StringField(_l("Carrier"), validators=[DataRequired(), Length(max=40)])
    tracking_no = StringField(_l("Tracking number"), validators=[DataRequired(), Length(max=64)])


class RefuseForm(FlaskForm):
    refuse_reason = TextAreaField(
        _l("Reason shown to the member"), validators=[DataRequired(), Length(max=200)]
    )


class PickupForm(FlaskForm):
    code = StringField(_l("Pick-up code"), validators=[DataRequired(), Length(max=20)])
    store_id = SelectField(_l("Store"), coerce=int, validators=[Optional()])
