"""Fixtures of the points tests: a member of the current brand."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture
def member(brand) -> int:
    return factories.member().id
