"""Spent points given back (a refunded order paid partly with points): once per key, never
more than the spend took."""

from __future__ import annotations

import pytest

from core.errors import NotFound
from points import services
from points.errors import InvalidPoints
from points.models import RETURN
from tests.support.points import check_invariants


def test_returns_add_back_up_to_what_was_spent_once_per_key(brand, member):
    services.adjust(member_id=member, points=1000, reason="gift", idempotency_key="g")
    services.spend(member_id=member, points=600, reason="shop", idempotency_key="order:spend")
    first = services.return_spent(original_key="order:spend", points=250, idempotency_key="r1")
    again = services.return_spent(original_key="order:spend", points=250, idempotency_key="r1")
    assert again.id == first.id and first.kind == RETURN and first.points == 250
    assert services.balance(member).balance == 650
    with pytest.raises(InvalidPoints):
        services.return_spent(original_key="order:spend", points=351, idempotency_key="r2")
    services.return_spent(original_key="order:spend", points=350, idempotency_key="r2")
    assert services.balance(member).balance == 1000
    check_invariants(member)


def test_a_return_needs_a_spend(brand, member):
    services.adjust(member_id=member, points=100, reason="gift", idempotency_key="g")
    with pytest.raises(NotFound):
        services.return_spent(original_key="nothing", points=1, idempotency_key="r")
    with pytest.raises(NotFound):  # an earning is not a spend
        services.return_spent(original_key="g", points=1, idempotency_key="r")
