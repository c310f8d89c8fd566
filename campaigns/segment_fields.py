"""What a segment condition may say: each field, its operators and the shape of its value.

``campaigns.segments`` validates a condition tree against these specs and compiles it to
SQL; the builder page lists them (with their Chinese labels) for its pickers. Values are
stored as the database holds them: ids, integers (points, fen), ISO dates, day counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

# How a condition's ``value`` is typed.
IDS = "ids"  # a list of ids of the brand's rows (tags, tiers, stores, guides, coupon templates)
TEXTS = "texts"  # a list of short texts (cities, regions)
CHOICES = "choices"  # a list of fixed codes (identity kinds)
NUMBER = "number"  # a whole number, or [low, high] for "between"
MONEY = "money"  # fen, as NUMBER
DAYS = "days"  # a number of days (1..3650)
DATES = "dates"  # ["YYYY-MM-DD", "YYYY-MM-DD"], brand-local days, both included
NONE = "none"  # no value

OPS = {
    "any": _l("has any of"),
    "all": _l("has all of"),
    "none": _l("has none of"),
    "in": _l("is one of"),
    "not_in": _l("is none of"),
    "set": _l("has one"),
    "unset": _l("has none"),
    "gte": _l("at least"),
    "lte": _l("at most"),
    "between": _l("between"),
    "within_days": _l("within the last days"),
    "before_days": _l("more than days ago"),
    "dates": _l("between dates"),
    "ever": _l("ever"),
    "never": _l("never"),
    "received": _l("received"),
    "redeemed": _l("used"),
    "not_received": _l("not received"),
    "not_redeemed": _l("not used"),
}

CHANNELS = {"any": _l("All channels"), "online": _l("Online"), "till": _l("In store")}
RANGE_OPS = ("gte", "lte", "between")
MAX_DAYS = 3650
MAX_NUMBER = 10**12


@dataclass(frozen=True)
class Field:
    """One condition field: its label, operators, and the value each operator takes."""

    name: str
    label: object
    ops: tuple[str, ...]
    value: str
    # Which of the brand's rows an IDS value names (for the check that they exist).
    ref: str | None = None
    # Extra keys of the condition: "days" (a window, required or optional) and "channel".
    window: str | None = None  # None | "required" | "optional"
    channel: bool = False
    # The value of operators that take none, or a different kind.
    op_values: dict[str, str] = field(default_factory=dict)
    group: object = ""


_MEMBER = _l("Member")
_PURCHASE = _l("Purchases")
_COUPON = _l("Coupons")

FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("tag", _l("Tags"), ("any", "all", "none"), IDS, ref="tag", group=_MEMBER),
        Field("tier", _l("Tier"), ("in", "not_in"), IDS, ref="tier", group=_MEMBER),
        Field("store", _l("Home store"), ("in", "not_in"), IDS, ref="store", group=_MEMBER),
        Field("city", _l("City of home store"), ("in", "not_in"), TEXTS, group=_MEMBER),
        Field("region", _l("Region of home store"), ("in", "not_in"), TEXTS, group=_MEMBER),
        Field(
            "guide",
            _l("Guide"),
            ("in", "not_in", "set", "unset"),
            IDS,
            ref="guide",
            op_values={"set": NONE, "unset": NONE},
            group=_MEMBER,
        ),
        Field(
            "identity",
            _l("Channel identities"),
            ("any", "none"),
            CHOICES,
            group=_MEMBER,
        ),
        Field("points_balance", _l("Points balance"), RANGE_OPS, NUMBER, group=_MEMBER),
        Field(
            "activated",
            _l("Card activation"),
            ("within_days", "before_days", "dates", "ever", "never"),
            DAYS,
            op_values={"dates": DATES, "ever": NONE, "never": NONE},
            group=_MEMBER,
        ),
        Field(
            "last_purchase",
            _l("Last purchase"),
            ("within_days", "before_days", "never"),
            DAYS,
            op_values={"never": NONE},
            group=_PURCHASE,
        ),
        Field("order_count", _l("Orders (all time)"), RANGE_OPS, NUMBER, group=_PURCHASE),
        Field("spend", _l("Spend (all time)"), RANGE_OPS, MONEY, group=_PURCHASE),
        Field(
            "orders_window",
            _l("Orders in a window"),
            RANGE_OPS,
            NUMBER,
            window="required",
            channel=True,
            group=_PURCHASE,
        ),
        Field(
            "spend_window",
            _l("Spend in a window"),
            RANGE_OPS,
            MONEY,
            window="required",
            channel=True,
            group=_PURCHASE,
        ),
        Field(
            "coupon",
            _l("Coupon history"),
            ("received", "redeemed", "not_received", "not_redeemed"),
            IDS,
            ref="coupon_template",
            window="optional",
            group=_COUPON,
        ),
    )
}

IDENTITY_LABELS = {
    "oa_openid": _l("Official account"),
    "mp_openid": _l("Mini program"),
    "unionid": _l("WeChat UnionID"),
    "jd": _l("JD"),
    "meituan": _l("Meituan"),
    "pos": _l("POS"),
}


def value_kind(spec: Field, op: str) -> str:
    """The kind of value ``op`` of this field takes."""
    return spec.op_values.get(op, spec.value)
