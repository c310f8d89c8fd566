"""Money in 元 and multipliers in 倍 round-trip exactly to the integers stored."""

from __future__ import annotations

import pytest
from wtforms import ValidationError

from core.formfields import fen_to_yuan, permille_to_times, times_to_permille, yuan_to_fen


@pytest.mark.parametrize(
    ("typed", "fen"),
    [("12.50", 1250), ("12.5", 1250), ("12", 1200), ("0.01", 1), ("", 0), ("¥1,234.56", 123456)],
)
def test_yuan_to_fen_is_exact(typed, fen):
    assert yuan_to_fen(typed) == fen


@pytest.mark.parametrize("typed", ["12.505", "-1", "abc", "1e3x", "NaN", "Infinity", "0.001"])
def test_yuan_to_fen_refuses_what_it_cannot_hold(typed):
    with pytest.raises(ValidationError):
        yuan_to_fen(typed)


@pytest.mark.parametrize("fen", [0, 1, 99, 100, 1250, 123456789, 10**9 + 7])
def test_fen_round_trips_through_yuan(fen):
    assert yuan_to_fen(fen_to_yuan(fen)) == fen
    assert fen_to_yuan(1250) == "12.50"


def test_times_round_trip_and_bounds():
    assert times_to_permille("1.5") == 1500 and permille_to_times(1500) == "1.5"
    assert times_to_permille("2倍") == 2000 and permille_to_times(2000) == "2"
    assert times_to_permille("0.125") == 125 and permille_to_times(125) == "0.125"
    for bad in ("1.0005", "x", ""):
        with pytest.raises(ValidationError):
            times_to_permille(bad)
    with pytest.raises(ValidationError):
        times_to_permille("1", low=1001)
