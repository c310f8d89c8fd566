"""The ledger's operations: earn, pending and release, spend, idempotency, bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import NotFound, ValidationError
from core.tenancy import use_brand
from points import rules, services
from points.errors import IdempotencyConflict, InsufficientPoints, InvalidPoints, UnknownMember
from points.expiry import release_due
from points.models import PointsEntry, PointsLot
from tests import factories
from tests.support.points import T0, check_invariants


def _no_pending():
    rules.update_settings(pending_days=0)
    db.session.commit()


def count_entries() -> int:
    return db.session.execute(
        select(func.count()).select_from(PointsEntry).execution_options(all_brands=True)
    ).scalar_one()


def test_purchase_earns_one_point_per_yuan_pending_then_released(member):
    e = services.earn_for_purchase(
        member_id=member, amount_fen=12_899, occurred_at=T0, idempotency_key="order-1", now=T0
    )
    db.session.commit()
    assert e.points == 128
    b = services.balance(member)
    assert (b.balance, b.pending) == (0, 128)

    assert release_due(now=T0 + dt.timedelta(days=6, hours=23)) == 0
    assert release_due(now=T0 + dt.timedelta(days=7)) == 1
    db.session.commit()
    b = services.balance(member)
    assert (b.balance, b.pending) == (128, 0)
    # A second run (a retried job) has no effect.
    assert release_due(now=T0 + dt.timedelta(days=8)) == 0
    db.session.commit()
    assert services.balance(member).balance == 128
    check_invariants(member)


def test_same_idempotency_key_has_one_effect(member):
    _no_pending()
    first = services.earn_for_purchase(
        member_id=member, amount_fen=10_000, idempotency_key="order-7", now=T0
    )
    again = services.earn_for_purchase(
        member_id=member, amount_fen=10_000, idempotency_key="order-7", now=T0
    )
    db.session.commit()
    assert again.id == first.id
    assert services.balance(member).balance == 100
    s1 = services.spend(member_id=member, points=30, reason="mall", idempotency_key="x-1")
    s2 = services.spend(member_id=member, points=30, reason="mall", idempotency_key="x-1")
    db.session.commit()
    assert s1.id == s2.id
    assert services.balance(member).balance == 70
    with pytest.raises(IdempotencyConflict):
        services.spend(member_id=member, points=5, reason="mall", idempotency_key="order-7")
    other = factories.member().id
    with pytest.raises(IdempotencyConflict):
        services.spend(member_id=other, points=5, reason="mall", idempotency_key="x-1")
    check_invariants(member)


def test_spend_more_than_balance_is_refused_and_writes_nothing(member):
    _no_pending()
    services.earn_for_purchase(member_id=member, amount_fen=5_000, idempotency_key="o1", now=T0)
    db.session.commit()
    before = count_entries()
    with pytest.raises(InsufficientPoints):
        services.spend(member_id=member, points=51, reason="mall", idempotency_key="s1", now=T0)
    db.session.commit()
    assert count_entries() == before
    assert services.balance(member).balance == 50


@pytest.mark.parametrize("amount", [0, -1, -100, 1.5, "10", True, None])
def test_bad_amounts_are_refused(member, amount):
    before = count_entries()
    with pytest.raises(InvalidPoints) as exc:
        services.earn_for_purchase(member_id=member, amount_fen=amount, idempotency_key="k")
    assert exc.value.field == "amount_fen"
    with pytest.raises(InvalidPoints):
        services.spend(member_id=member, points=amount, reason="r", idempotency_key="k")
    with pytest.raises((InvalidPoints, InsufficientPoints)):  # negative adjust = deduction
        services.adjust(member_id=member, points=amount, reason="r", idempotency_key="k")
    db.session.commit()
    assert count_entries() == before


def test_unknown_member_and_another_brands_member(brand, member):
    with pytest.raises(UnknownMember):
        services.earn_for_purchase(member_id=999_999, amount_fen=100, idempotency_key="k1")
    other_brand = factories.brand()
    with use_brand(other_brand.id):
        stranger = factories.member().id
    with pytest.raises(UnknownMember):
        services.earn_for_purchase(member_id=stranger, amount_fen=100, idempotency_key="k2")
    with pytest.raises(UnknownMember):
        services.spend(member_id=stranger, points=1, reason="r", idempotency_key="k3")
    with pytest.raises(UnknownMember):
        services.balance(stranger)
    db.session.commit()
    assert count_entries() == 0


def test_missing_reason_and_key_are_refused(member):
    with pytest.raises(ValidationError) as exc:
        services.adjust(member_id=member, points=10, reason="  ", idempotency_key="k")
    assert exc.value.field == "reason"
    with pytest.raises(InvalidPoints):
        services.spend(member_id=member, points=1, reason="r", idempotency_key="")
    assert count_entries() == 0


def test_spending_takes_earliest_expiring_lots_first(member):
    _no_pending()
    for i, day in enumerate((30, 10, 20)):
        services.earn_for_purchase(
            member_id=member,
            amount_fen=10_000,
            occurred_at=T0 - dt.timedelta(days=day),
            idempotency_key=f"o{i}",
            now=T0,
        )
    services.spend(member_id=member, points=150, reason="mall", idempotency_key="s", now=T0)
    db.session.commit()
    lots = db.session.execute(select(PointsLot).order_by(PointsLot.earned_at)).scalars().all()
    assert [lot.remaining for lot in lots] == [0, 50, 100]
    check_invariants(member)


def test_refund_reverses_proportionally_and_exactly_in_total(member):
    _no_pending()
    services.earn_for_purchase(member_id=member, amount_fen=10_000, idempotency_key="o", now=T0)
    db.session.commit()
    assert services.balance(member).balance == 100
    reversed_ = []
    for i, fen in enumerate((3_333, 3_333, 3_334)):
        r = services.refund(
            original_key="o", refunded_fen=fen, order_total_fen=10_000, idempotency_key=f"r{i}"
        )
        reversed_.append(-r.points)
    db.session.commit()
    # Each refund reverses floor(earned * refunded so far / total) minus what went before.
    assert reversed_ == [33, 33, 34]
    assert services.balance(member).balance == 0
    with pytest.raises(ValidationError):
        services.refund(
            original_key="o", refunded_fen=1, order_total_fen=10_000, idempotency_key="r3"
        )
    with pytest.raises(NotFound):
        services.refund(
            original_key="nope", refunded_fen=1, order_total_fen=10, idempotency_key="r4"
        )
    check_invariants(member)


def test_refund_of_spent_points_becomes_debt_repaid_by_later_earnings(member):
    _no_pending()
    services.earn_for_purchase(member_id=member, amount_fen=20_000, idempotency_key="o1", now=T0)
    services.spend(member_id=member, points=150, reason="mall", idempotency_key="s1", now=T0)
    services.refund(
        original_key="o1", refunded_fen=20_000, order_total_fen=20_000, idempotency_key="r1"
    )
    db.session.commit()
    b = services.balance(member)
    assert (b.balance, b.debt, b.net) == (0, 150, -150)
    check_invariants(member)
    # Pending points repay the debt when they are released.
    rules.update_settings(pending_days=7)
    services.earn_for_purchase(
        member_id=member, amount_fen=10_000, occurred_at=T0, idempotency_key="o2", now=T0
    )
    db.session.commit()
    assert services.balance(member).pending == 100
    release_due(now=T0 + dt.timedelta(days=7))
    db.session.commit()
    b = services.balance(member)
    assert (b.balance, b.pending, b.debt) == (0, 0, 50)
    rules.update_settings(pending_days=0)
    services.earn_for_purchase(member_id=member, amount_fen=8_000, idempotency_key="o3", now=T0)
    db.session.commit()
    b = services.balance(member)
    assert (b.balance, b.debt) == (30, 0)
    check_invariants(member)


def test_refund_before_release_takes_from_pending(member):
    services.earn_for_purchase(
        member_id=member, amount_fen=10_000, occurred_at=T0, idempotency_key="o", now=T0
    )
    services.refund(
        original_key="o", refunded_fen=2_500, order_total_fen=10_000, idempotency_key="r"
    )
    db.session.commit()
    b = services.balance(member)
    assert (b.balance, b.pending, b.debt) == (0, 75, 0)
    check_invariants(member)


def test_welcome_points_once_per_member(member):
    assert services.grant_welcome(member_id=member) is None
    rules.update_settings(welcome_points=200)
    services.grant_welcome(member_id=member)
    services.grant_welcome(member_id=member)
    db.session.commit()
    assert services.balance(member).balance == 200


def test_history_and_expiring_soon(member):
    _no_pending()
    services.earn_for_purchase(member_id=member, amount_fen=10_000, idempotency_key="o", now=T0)
    services.spend(member_id=member, points=40, reason="coupon", idempotency_key="s", now=T0)
    db.session.commit()
    page = services.history(member)
    assert [(h.kind, h.points) for h in page.items] == [("spend", -40), ("earn", 100)]
    soon = services.expiring_soon(member, now=T0)
    assert [e.points for e in soon] == [60]
