"""The mini-program API fuzzed from its own OpenAPI document (schemathesis): never a 5xx,
every answer documented and matching its schema. The document holds the operations of every
package (members, points, coupons and the mall), so they are all fuzzed here."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from coupons import services as coupons
from members import store_locations
from members.models import Member
from points import services as points
from tests import factories as f
from tests.support.mini_program import activate


@pytest.fixture
def mp_schema(wx_app):
    return schemathesis.openapi.from_wsgi("/api/mp/openapi.json", wx_app)


@pytest.fixture
def mp_member(wx_client, wx_brand, wx_consumer):
    """An activated member with a session token, a store on the map, points, a coupon (shared)
    and a mall item."""
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    s = f.store(wx_brand, code="SH001")
    with use_brand(wx_brand.id):
        store_locations.set_store_location(store_id=s.id, lat=31.2295, lng=121.4556)
        db.session.commit()
        member_id = db.session.execute(select(Member.id)).scalar_one()
        points.adjust(member_id=member_id, points=500, reason="测试", idempotency_key="fuzz")
        tpl = f.coupon_template()
        f.mall_item(tpl)
        coupon = coupons.claim(template_id=tpl.id, member_id=member_id, idempotency_key="fuzz")
        coupons.create_share(coupon_id=coupon.id, member_id=member_id)
        db.session.commit()
    return wx_brand, token


schema = schemathesis.pytest.from_fixture("mp_schema")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_mp_api_never_fails(case, mp_member):
    brand, token = mp_member
    case.path_parameters = {**(case.path_parameters or {}), "brand_slug": brand.slug}
    if case.operation.definition.raw.get("security"):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
    )
