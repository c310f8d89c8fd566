"""The largest-remainder allocation of discounts and points over order lines."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shop.pricing import allocate, points_value


@st.composite
def amount_and_weights(draw):
    weights = draw(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30))
    if sum(weights) == 0:
        weights[0] = draw(st.integers(min_value=1, max_value=10**7))
    total = draw(st.integers(min_value=0, max_value=sum(weights)))
    return total, weights


@settings(max_examples=300, deadline=None)
@given(amount_and_weights())
def test_shares_sum_exactly_none_negative_none_past_its_weight_within_one_fen(case):
    total, weights = case
    shares = allocate(total, weights)
    assert sum(shares) == total
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))
    whole = sum(weights)
    for s, w in zip(shares, weights, strict=True):
        assert abs(Fraction(s) - Fraction(total * w, whole)) < 1


@settings(max_examples=300, deadline=None)
@given(amount_and_weights())
def test_line_amounts_after_a_coupon_and_points_stay_exact(case):
    discount, goods = case
    after = [g - d for g, d in zip(goods, allocate(discount, goods), strict=True)]
    points = sum(after) // 2
    pts = allocate(points, after) if sum(after) else [0] * len(after)
    pay = [a - p for a, p in zip(after, pts, strict=True)]
    assert all(p >= 0 for p in pay)
    assert sum(pay) == sum(goods) - discount - points


def test_ties_go_to_the_earlier_line():
    assert allocate(1, [1, 1, 1]) == [1, 0, 0]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(500, [4000, 3000]) == [286, 214]


def test_bad_arguments():
    with pytest.raises(ValueError):
        allocate(-1, [1])
    with pytest.raises(ValueError):
        allocate(1, [0, 0])
    assert allocate(0, [0, 0]) == [0, 0]


@pytest.mark.parametrize(
    ("points", "rate", "expected"),
    [(100, 100, (100, 100)), (5005, 1000, (500, 5000)), (3, 50, (6, 3)), (9, 1000, (0, 0))],
)
def test_points_value(points, rate, expected):
    assert points_value(points, rate) == expected
