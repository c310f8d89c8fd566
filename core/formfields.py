"""Form fields for amounts as operators type them: money in 元 with at most two decimals
(held in fen), multipliers in 倍 with at most three decimals (held in per mille).

Both refuse what they cannot hold exactly (12.505 元 is refused, never rounded): the
stored integers are what the operator typed, to the fen and to the per mille.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from wtforms import StringField, ValidationError

MAX_YUAN = Decimal("100000000")


def _decimal(value) -> Decimal | None:
    text = str(value if value is not None else "").strip().replace("，", "").replace(",", "")
    text = text.removeprefix("¥").removeprefix("￥").removesuffix("元").removesuffix("倍")
    if not text:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def yuan_to_fen(value: str | None) -> int:
    """ "12.5" yuan -> 1250 fen; refuses fractions of a fen and negatives."""
    d = _decimal(value if (value or "").strip() else "0")
    if d is None or d < 0 or d != d.quantize(Decimal("0.01")) or d > MAX_YUAN:
        raise ValidationError(_l("Enter an amount in yuan, e.g. 12.50."))
    return int(d * 100)


def fen_to_yuan(fen: int | None) -> str:
    """1250 -> "12.50" (exact: integer arithmetic, no floats)."""
    fen = int(fen or 0)
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def times_to_permille(value: str | None, *, low: int = 0, high: int = 100_000) -> int:
    """ "1.5" (倍) -> 1500 per mille; refuses more than three decimals and out-of-range."""
    d = _decimal(value)
    if d is None or d != d.quantize(Decimal("0.001")):
        raise ValidationError(_l("Enter a multiple such as 1.5 (at most three decimals)."))
    permille = int(d * 1000)
    if not low <= permille <= high:
        raise ValidationError(
            _l(
                "Enter a multiple between %(low)s and %(high)s.",
                low=permille_to_times(low),
                high=permille_to_times(high),
            )
        )
    return permille


def permille_to_times(permille: int | None) -> str:
    """1500 -> "1.5", 2000 -> "2" (as the operator would type it)."""
    d = Decimal(int(permille or 0)) / 1000
    text = f"{d:.3f}".rstrip("0").rstrip(".")
    return text or "0"


class YuanField(StringField):
    """An amount typed in yuan, held in fen (``.fen``); set ``.data`` from fen with
    ``fen_to_yuan``."""

    fen = 0

    def post_validate(self, form, validation_stopped):
        if not validation_stopped:
            try:
                self.fen = yuan_to_fen(self.data)
            except ValidationError as exc:
                self.errors.append(str(exc))


class TimesField(StringField):
    """A multiplier typed in 倍, held in per mille (``.permille``)."""

    permille = 0

    def __init__(self, label=None, validators=None, *, low: int = 0, high: int = 100_000, **kw):
        super().__init__(label, validators, **kw)
        self.low, self.high = low, high

    def post_validate(self, form, validation_stopped):
        if not validation_stopped:
            try:
                self.permille = times_to_permille(self.data, low=self.low, high=self.high)
            except ValidationError as exc:
                self.errors.append(str(exc))
