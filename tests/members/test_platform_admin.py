"""A platform admin working on a brand sees its members as the brand's admin does."""

from __future__ import annotations

from core.db import db
from core.tenancy import use_brand
from members.activation import activate_member
from tests import factories as f


def test_platform_admin_sees_the_chosen_brands_members(app, runner, ctx):
    a, b = f.brand(), f.brand()
    for brand, phone in ((a, "13700000001"), (b, "13700000002")):
        with use_brand(brand.id):
            activate_member(phone=phone, source="oa", consent_version="t")
            db.session.commit()
    assert (
        runner.invoke(
            args=["platform-admin", "create", "--username", "ops", "--password", "ops-password-1"]
        ).exit_code
        == 0
    )
    c = app.test_client()
    token = f.csrf_token(c, "/console/login")
    c.post(
        "/console/login",
        data={"brand": "", "account": "ops", "password": "ops-password-1", "csrf_token": token},
    )
    token = f.csrf_token(c, "/console/brands")
    c.post("/console/brands", data={"brand_id": b.id, "csrf_token": token})
    page = c.get("/console/members").get_data(as_text=True)
    assert "137****0002" in page and "137****0001" not in page
