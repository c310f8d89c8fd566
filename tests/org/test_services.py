"""org.services: the store list every package uses, and staff passwords."""

from __future__ import annotations

import pytest

from core.db import db
from core.errors import ValidationError
from core.tenancy import use_brand
from org import services
from tests import factories


def test_list_stores_is_the_brands_own_by_code(ctx):
    b, other = factories.brand(), factories.brand()
    factories.store(other, code="A-OTHER")
    s2 = factories.store(b, code="B2")
    s1 = factories.store(b, code="A1")
    with use_brand(b.id):
        s2 = db.session.merge(s2)
        services.update_store(store=s2, code="B2", name=s2.name, city=s2.city, active=False)
        db.session.commit()
        assert [s.code for s in services.list_stores()] == ["A1", "B2"]
        assert [s.code for s in services.list_stores(active_only=True)] == ["A1"]
        assert [s.code for s in services.list_stores(store_id=s2.id)] == ["B2"]
        assert services.list_stores(active_only=True, store_id=s2.id) == []
        assert [s.id for s in services.list_stores(store_id=s1.id)] == [s1.id]


def test_new_staff_needs_a_password(ctx):
    b = factories.brand()
    with use_brand(b.id), pytest.raises(ValidationError) as exc:
        services.create_staff(name="甲", phone="13900000001", role="brand_admin", password="")
    assert exc.value.field == "password"
