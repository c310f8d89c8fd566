"""The segment builder's form: a name and the condition tree (JSON, written by the page's
script into a hidden field; checked by ``campaigns.segments.validate`` when saved)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from campaigns.segment_services import NAME_MAX


class SegmentForm(FlaskForm):
    name = StringField(
        _l("Segment name"),
        validators=[
            DataRequired(message=_l("Enter a name.")),
            Length(max=NAME_MAX, message=_l("Name: 1 to %(max)d characters.")),
        ],
    )
    definition = HiddenField(_l("Conditions"), validators=[DataRequired(_l("Add a condition."))])
