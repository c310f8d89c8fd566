"""Fixtures of the members tests: a brand with two stores, a manager and guides."""

from __future__ import annotations

import dataclasses

import pytest

from core.db import db
from core.tenancy import use_brand
from org.models import Brand, Staff, Store
from tests import factories as f


@dataclasses.dataclass
class World:
    brand: Brand
    store: Store
    store2: Store
    manager: Staff
    guide: Staff
    guide2: Staff
    other_store_guide: Staff
    admin: Staff


@pytest.fixture
def world(ctx) -> World:
    b = f.brand(timezone="Asia/Shanghai")
    s1 = f.store(b, code="SH001", city="上海")
    s2 = f.store(b, code="HZ001", city="杭州")
    w = World(
        brand=b,
        store=s1,
        store2=s2,
        manager=f.staff(b, "store_manager", s1),
        guide=f.staff(b, "guide", s1),
        guide2=f.staff(b, "guide", s1),
        other_store_guide=f.staff(b, "guide", s2),
        admin=f.staff(b, "brand_admin"),
    )
    with use_brand(b.id):
        yield w
    db.session.rollback()
