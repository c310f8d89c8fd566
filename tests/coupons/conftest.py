"""Fixtures of the coupon tests: a store of the current brand."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture
def store(brand):
    return factories.store(brand)
