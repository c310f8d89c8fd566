"""Commission rules (提成规则) and how an order line's commission is computed.

Precedence, first that applies wins: the SKU's fixed amount per unit × quantity, the SKU's
rate, the category's rate, the brand's default rate (``DistributionSettings.default_rate_bp``).
A monthly tier plan raises the default rate: once the guide's performance in the month
(before this order) reaches a step's target, lines that fall to the default earn the step's
rate when it is higher. With ``commission_on_promotions`` off, promotion and flash-sale lines
earn nothing.

The base is the line's ``pay_fen``: what the customer paid for it after coupons and points,
without shipping. Rates are basis points (10000 = 100%); amounts are rounded down to the fen
and never exceed the base. The rule applied is stored on each commission line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.db import db
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from guide_distribution.models import PerformanceLine
from guide_distribution.models.commission import (
    APPLIED_DEFAULT,
    APPLIED_PROMOTION,
    APPLIED_TIER,
    RULE_CATEGORY_RATE,
    RULE_KINDS,
    RULE_SKU_FIXED,
    RULE_SKU_RATE,
    CommissionRule,
    CommissionTier,
)
from guide_distribution.settings import get_settings
from shop import numbers
from shop.models import Order, OrderLine

FULL_BP = 10_000
MAX_FIXED_FEN = 100_000_000
MAX_TARGET_FEN = 10_000_000_000
PERCENT_RE = re.compile(r"^\s*(\d{1,3})(?:\.(\d{1,2}))?\s*%?\s*$")


def rate_bp_from_percent(text: str, field: str = "rate") -> int:
    """'12.5' or '12.5%' -> 1250 basis points; over 100% or not a number is refused."""
    m = PERCENT_RE.match(text or "")
    if not m:
        raise ValidationError(
            _l("Enter a percentage such as 5 or 12.5 (two decimals at most)."), field=field
        )
    bp = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if bp > FULL_BP:
        raise ValidationError(_l("A rate cannot be over 100%."), field=field)
    return bp


def percent_text(bp: int) -> str:
    whole, frac = divmod(int(bp), 100)
    return f"{whole}" if not frac else f"{whole}.{frac:02d}".rstrip("0")


def _check_bp(value, field: str = "rate_bp") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(_l("Enter a rate of 0 or more."), field=field)
    if value > FULL_BP:
        raise ValidationError(_l("A rate cannot be over 100%."), field=field)
    return value


# --- rules -------------------------------------------------------------------------------------


def _one(model, ident: int):
    """The current brand's row (a query, scoped to the brand), or None."""
    return db.session.execute(select(model).where(model.id == ident)).scalar_one_or_none()


def list_rules() -> list[CommissionRule]:
    order = {k: i for i, k in enumerate(RULE_KINDS)}
    rows = db.session.execute(select(CommissionRule).order_by(CommissionRule.id)).scalars().all()
    return sorted(rows, key=lambda r: (order.get(r.kind, 9), r.target))


def save_rule(
    *,
    kind: str,
    target: str,
    rate_bp: int = 0,
    amount_fen: int = 0,
    active: bool = True,
    rule_id: int | None = None,
) -> CommissionRule:
    """Create or change a rule (one per kind and target); flushes."""
    if kind not in RULE_KINDS:
        raise ValidationError(_l("Choose the kind of rule."), field="kind")
    target = (target or "").strip()
    if not target or len(target) > 60:
        raise ValidationError(_l("Enter a SKU code or category code."), field="target")
    if kind == RULE_SKU_FIXED:
        if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
            raise ValidationError(_l("Enter an amount."), field="amount")
        if not 0 <= amount_fen <= MAX_FIXED_FEN:
            raise ValidationError(_l("Enter an amount from 0 to 1,000,000 yuan."), field="amount")
        rate_bp = 0
    else:
        rate_bp = _check_bp(rate_bp, "rate")
        amount_fen = 0
    _check_target(kind, target)
    clash = db.session.execute(
        select(CommissionRule.id).where(
            CommissionRule.kind == kind, CommissionRule.target == target
        )
    ).scalar()
    if clash is not None and clash != rule_id:
        raise ValidationError(_l("A rule of this kind exists for this code."), field="target")
    if rule_id is None:
        rule = CommissionRule(brand_id=require_brand_id(), kind=kind, target=target)
        db.session.add(rule)
    else:
        rule = _one(CommissionRule, rule_id)
        if rule is None:
            raise NotFound(_l("No such rule."))
        rule.kind, rule.target = kind, target
    rule.rate_bp, rule.amount_fen, rule.active = rate_bp, amount_fen, bool(active)
    db.session.flush()
    return rule


def _check_target(kind: str, target: str) -> None:
    from shop.models import Category, Sku

    if kind == RULE_CATEGORY_RATE:
        found = db.session.execute(select(Category.id).where(Category.code == target)).scalar()
        if found is None:
            raise ValidationError(_l("No category has this code."), field="target")
    else:
        found = db.session.execute(select(Sku.id).where(Sku.code == target)).scalar()
        if found is None:
            raise ValidationError(_l("No SKU has this code."), field="target")


def delete_rule(rule_id: int) -> None:
    rule = _one(CommissionRule, rule_id)
    if rule is None:
        raise NotFound(_l("No such rule."))
    db.session.delete(rule)
    db.session.flush()


def list_tiers() -> list[CommissionTier]:
    return list(
        db.session.execute(select(CommissionTier).order_by(CommissionTier.target_fen)).scalars()
    )


def save_tier(
    *, name: str, target_fen: int, rate_bp: int, tier_id: int | None = None
) -> CommissionTier:
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationError(_l("Enter a name of at most 60 characters."), field="name")
    if not isinstance(target_fen, int) or not 0 < target_fen <= MAX_TARGET_FEN:
        raise ValidationError(_l("Enter a monthly target above zero."), field="target")
    rate_bp = _check_bp(rate_bp, "rate")
    clash = db.session.execute(
        select(CommissionTier.id).where(CommissionTier.target_fen == target_fen)
    ).scalar()
    if clash is not None and clash != tier_id:
        raise ValidationError(_l("A step with this target exists."), field="target")
    if tier_id is None:
        tier = CommissionTier(brand_id=require_brand_id())
        db.session.add(tier)
    else:
        tier = _one(CommissionTier, tier_id)
        if tier is None:
            raise NotFound(_l("No such step."))
    tier.name, tier.target_fen, tier.rate_bp = name, target_fen, rate_bp
    db.session.flush()
    return tier


def delete_tier(tier_id: int) -> None:
    tier = _one(CommissionTier, tier_id)
    if tier is None:
        raise NotFound(_l("No such step."))
    db.session.delete(tier)
    db.session.flush()


# --- computing ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Computed:
    order_line_id: int
    base_fen: int
    quantity: int
    rule: str
    rule_id: int | None
    rate_bp: int
    unit_fen: int
    amount_fen: int


def month_performance(guide_id: int, *, day: dt.date, exclude_order_id: int | None) -> int:
    """The guide's performance from the first of ``day``'s month to ``day`` (net of refunds)."""
    stmt = select(func.coalesce(func.sum(PerformanceLine.amount_fen), 0)).where(
        PerformanceLine.guide_id == guide_id,
        PerformanceLine.day >= day.replace(day=1),
        PerformanceLine.day <= day,
    )
    if exclude_order_id is not None:
        stmt = stmt.where(PerformanceLine.order_id != exclude_order_id)
    return int(db.session.execute(stmt).scalar_one())


def _rate(base: int, bp: int) -> int:
    return base * bp // FULL_BP  # rounded down to the fen


def compute(order: Order, lines: list[OrderLine], *, guide_id: int) -> list[Computed]:
    """Each line's commission by the brand's rules today."""
    settings = get_settings()
    codes = {ln.sku_code for ln in lines if ln.sku_code}
    cats = {ln.category for ln in lines if ln.category}
    rules: dict[tuple[str, str], CommissionRule] = {}
    if codes or cats:
        for r in db.session.execute(
            select(CommissionRule).where(
                CommissionRule.active.is_(True),
                CommissionRule.target.in_(codes | cats),
            )
        ).scalars():
            rules[(r.kind, r.target)] = r
    default = (APPLIED_DEFAULT, None, settings.default_rate_bp)
    tiers = list_tiers()
    if tiers:
        done = month_performance(
            guide_id, day=numbers.local_day(order.paid_at), exclude_order_id=order.id
        )
        reached = [t for t in tiers if done >= t.target_fen]
        if reached:
            best = max(reached, key=lambda t: t.rate_bp)
            if best.rate_bp > settings.default_rate_bp:
                default = (APPLIED_TIER, best.id, best.rate_bp)
    out: list[Computed] = []
    for ln in lines:
        base = max(int(ln.pay_fen), 0)
        qty = int(ln.quantity)

        def made(rule, rule_id, bp=0, unit=0, amount=0, ln=ln, base=base, qty=qty):
            return Computed(ln.id, base, qty, rule, rule_id, bp, unit, min(amount, base))

        if not settings.commission_on_promotions and (ln.promotion or ln.flash_sale_id):
            out.append(made(APPLIED_PROMOTION, None))
            continue
        fixed = rules.get((RULE_SKU_FIXED, ln.sku_code))
        sku = rules.get((RULE_SKU_RATE, ln.sku_code))
        cat = rules.get((RULE_CATEGORY_RATE, ln.category or ""))
        if fixed is not None:
            out.append(
                made(RULE_SKU_FIXED, fixed.id, unit=fixed.amount_fen, amount=fixed.amount_fen * qty)
            )
        elif sku is not None:
            out.append(made(RULE_SKU_RATE, sku.id, bp=sku.rate_bp, amount=_rate(base, sku.rate_bp)))
        elif cat is not None:
            out.append(
                made(RULE_CATEGORY_RATE, cat.id, bp=cat.rate_bp, amount=_rate(base, cat.rate_bp))
            )
        else:
            rule, rule_id, bp = default
            out.append(made(rule, rule_id, bp=bp, amount=_rate(base, bp)))
    return out
