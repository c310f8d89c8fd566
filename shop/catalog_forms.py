"""Console forms of the catalog. The product form's SKU rows are repeated inputs
(``sku_id``, ``sku_code``, ``sku_spec``, ``sku_price``, ``sku_original``, ``sku_stock``) that
the page adds and removes; ``sku_rows`` reads them back."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, MultipleFileField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms import ValidationError as FormError
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from core.formfields import YuanField, fen_to_yuan, yuan_to_fen
from shop.catalog import spec_source

NO_CATEGORY = 0


class CategoryForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=60)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    sort = IntegerField(
        _l("Sort (larger first)"), default=0, validators=[NumberRange(-1000000, 1000000)]
    )
    active = BooleanField(_l("Shown to members"), default=True)


class ProductForm(FlaskForm):
    code = StringField(_l("Product code"), validators=[DataRequired(), Length(max=60)])
    name = StringField(_l("Product name"), validators=[DataRequired(), Length(max=120)])
    category_id = SelectField(_l("Category"), coerce=int, default=NO_CATEGORY)
    subtitle = StringField(_l("Subtitle"), validators=[Optional(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    limit_per_member = IntegerField(
        _l("Limit per member (0 = no limit)"), default=0, validators=[NumberRange(0, 999)]
    )
    sort = IntegerField(
        _l("Sort (larger first)"), default=0, validators=[NumberRange(-1000000, 1000000)]
    )
    on_sale = BooleanField(_l("On sale"))
    promotion = BooleanField(_l("Promotion item"))
    new_images = MultipleFileField(_l("Add images (JPEG, PNG, WebP)"))

    def fill(self, product) -> None:
        self.category_id.data = product.category_id or NO_CATEGORY

    def values(self, images: list[str]) -> dict:
        """The keyword arguments of ``create_product`` / ``update_product`` (without SKUs)."""
        return {
            "code": self.code.data,
            "name": self.name.data,
            "category_id": self.category_id.data or None,
            "subtitle": self.subtitle.data or "",
            "description": self.description.data or "",
            "images": images,
            "on_sale": bool(self.on_sale.data),
            "limit_per_member": self.limit_per_member.data or 0,
            "promotion": bool(self.promotion.data),
            "sort": self.sort.data or 0,
        }


def sku_form_rows(skus) -> list[dict]:
    """A product's SKUs as the form's rows show them."""
    return [
        {
            "id": s.id,
            "code": s.code,
            "spec": spec_source(s.spec),
            "price": fen_to_yuan(s.price_fen),
            "original": fen_to_yuan(s.original_price_fen) if s.original_price_fen else "",
            "stock": s.stock,
            "errors": {},
        }
        for s in skus
        if s.active
    ]


def sku_rows(form) -> tuple[list[dict], list[dict]]:
    """The posted SKU rows: (what the page shows again, what the service gets). Amounts
    that are not yuan get an error on their row; the service is then not called."""
    get = form.getlist
    ids, codes, specs = get("sku_id"), get("sku_code"), get("sku_spec")
    prices, originals, stocks = get("sku_price"), get("sku_original"), get("sku_stock")
    n = max(len(codes), len(specs), len(prices))
    shown, values = [], []

    def at(items, i):
        return items[i].strip() if i < len(items) else ""

    for i in range(n):
        raw_id = at(ids, i)
        row = {
            "id": int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else None,
            "code": at(codes, i),
            "spec": at(specs, i),
            "price": at(prices, i),
            "original": at(originals, i),
            "stock": at(stocks, i),
            "errors": {},
        }
        if not any((row["code"], row["spec"], row["price"], row["original"])) and row["id"] is None:
            continue  # an empty row added and left
        value = {"id": row["id"], "code": row["code"], "spec": row["spec"]}
        for key, name in (("price", "price_fen"), ("original", "original_price_fen")):
            try:
                value[name] = yuan_to_fen(row[key]) if (row[key] or key == "price") else 0
            except FormError as exc:
                row["errors"][name] = str(exc)
        if row["id"] is None:
            s = row["stock"] or "0"
            if s.isascii() and s.isdigit() and len(s) <= 9:
                value["stock"] = int(s)
            else:
                row["errors"]["stock"] = str(
                    _l("Enter a whole number from %(low)d to %(high)d.", low=0, high=10**7)
                )
        shown.append(row)
        values.append(value)
    return shown, values


class StockForm(FlaskForm):
    delta = IntegerField(
        _l("Change (+ in, - out)"), validators=[DataRequired(), NumberRange(-(10**7), 10**7)]
    )
    note = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])
    request_key = StringField(validators=[DataRequired(), Length(max=64)])


def _to_utc(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    return value.replace(tzinfo=tz).astimezone(dt.UTC) if value else None


def _to_local(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    return value.astimezone(tz).replace(tzinfo=None) if value else None


class FlashSaleForm(FlaskForm):
    sku_id = SelectField(_l("SKU"), coerce=int)
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    price = YuanField(_l("Flash-sale price (yuan)"), validators=[DataRequired()])
    quantity = IntegerField(_l("Quantity"), validators=[DataRequired(), NumberRange(1, 10**7)])
    per_member_limit = IntegerField(
        _l("Limit per member"), default=1, validators=[DataRequired(), NumberRange(1, 999)]
    )
    starts_at = DateTimeLocalField(_l("Starts at"), validators=[DataRequired()])
    ends_at = DateTimeLocalField(_l("Ends at"), validators=[DataRequired()])

    def fill(self, fs, tz: zoneinfo.ZoneInfo) -> None:
        self.sku_id.data = fs.sku_id
        self.price.data = fen_to_yuan(fs.price_fen)
        self.starts_at.data = _to_local(fs.starts_at, tz)
        self.ends_at.data = _to_local(fs.ends_at, tz)

    def values(self, tz: zoneinfo.ZoneInfo) -> dict:
        return {
            "name": self.name.data,
            "price_fen": self.price.fen,
            "quantity": self.quantity.data,
            "per_member_limit": self.per_member_limit.data,
            "starts_at": _to_utc(self.starts_at.data, tz),
            "ends_at": _to_utc(self.ends_at.data, tz),
        }


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()])


class ActionForm(FlaskForm):
    pass
