"""Console forms of the workbench's content: materials, tasks from HQ, monthly targets."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, MultipleFileField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from core.formfields import YuanField
from guide_distribution.models import MATERIAL_TEXT_MAX

NONE = 0


class MaterialForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=80)])
    body = TextAreaField(_l("Text for Moments"), validators=[Length(max=MATERIAL_TEXT_MAX)])
    new_images = MultipleFileField(_l("Add pictures (JPEG, PNG, WebP; at most 9)"))
    active = BooleanField(_l("Shown to guides"), default=True)


class TaskForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=80)])
    body = TextAreaField(_l("Text to send"), validators=[Length(max=MATERIAL_TEXT_MAX)])
    image = FileField(_l("Picture to send (optional)"))
    product_id = SelectField(_l("Product (optional)"), coerce=int, default=NONE)
    tag_id = SelectField(_l("Only customers with the tag"), coerce=int, default=NONE)
    deadline = DateTimeLocalField(
        _l("Deadline"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()]
    )
    guides = SelectMultipleField(_l("Guides"), coerce=int, validators=[Optional()])
    stores = SelectMultipleField(
        _l("All guides of these stores"), coerce=int, validators=[Optional()]
    )


class TargetForm(FlaskForm):
    month = StringField(_l("Month"), validators=[DataRequired()])
    guide_id = SelectField(_l("Guide"), coerce=int)
    target = YuanField(_l("Target (yuan)"), validators=[DataRequired()])


class StoreTargetForm(FlaskForm):
    month = StringField(_l("Month"), validators=[DataRequired()])
    store_id = SelectField(_l("Store"), coerce=int)
    target = YuanField(
        _l("Store target (yuan), split over its guides"), validators=[DataRequired()]
    )


class TargetImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()])
