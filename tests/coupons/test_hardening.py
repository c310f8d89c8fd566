"""Another brand's ids, or made-up ones, change nothing and say which field is wrong."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.db import db
from core.errors import ValidationError
from core.tenancy import use_brand
from coupons import services
from coupons.models import CouponTemplate, PosKey
from tests import factories as f

NOW = dt.datetime.now(dt.UTC)


def _template(**kw) -> CouponTemplate:
    values = dict(name="5元券", kind="cash", value_fen=500, valid_until=NOW + dt.timedelta(days=9))
    values.update(kw)
    return services.create_template(**values)


def test_a_store_scope_takes_only_this_brands_stores(ctx):
    ours, theirs = f.brand(), f.brand()
    mine = f.store(ours)
    foreign = f.store(theirs)
    with use_brand(ours.id):
        for bad in ([foreign.id], [999999], [mine.id, foreign.id]):
            with pytest.raises(ValidationError) as err:
                _template(store_ids=bad)
            assert err.value.field == "store_ids"
            db.session.rollback()
        assert db.session.scalars(select(CouponTemplate)).all() == []
        tpl = _template(store_ids=[mine.id, mine.id])
        db.session.commit()
        assert tpl.store_ids == [mine.id]
        with pytest.raises(ValidationError):
            services.update_template(template=tpl, **{**_fields(tpl), "store_ids": [foreign.id]})
        db.session.rollback()
        assert db.session.get(CouponTemplate, tpl.id).store_ids == [mine.id]


def _fields(tpl: CouponTemplate) -> dict:
    return dict(
        name=tpl.name,
        kind=tpl.kind,
        value_fen=tpl.value_fen,
        valid_until=tpl.valid_until,
        store_ids=tpl.store_ids,
    )


def test_the_console_names_the_store_field(client, ctx):
    ours, theirs = f.brand(), f.brand()
    foreign = f.store(theirs)
    admin = f.staff(ours)
    f.login(client, ours, admin)
    token = f.csrf(client, "/console/coupons/templates/new")
    r = client.post(
        "/console/coupons/templates/new",
        data={
            "csrf_token": token,
            "name": "5元券",
            "kind": "cash",
            "value": "5",
            "valid_days": "30",
            "store_ids": str(foreign.id),
            "per_member_limit": "0",
            "per_day_limit": "0",
        },
    )
    assert r.status_code == 400
    assert "没有这些门店" in r.get_data(as_text=True)
    with use_brand(ours.id):
        assert db.session.scalars(select(CouponTemplate)).all() == []


def test_revoking_another_brands_pos_key_is_a_404_and_changes_nothing(client, ctx):
    ours, theirs = f.brand(), f.brand()
    admin = f.staff(ours)
    their_store = f.store(theirs)
    our_store = f.store(ours)
    with use_brand(theirs.id):
        key, _raw = services.create_key(store_id=their_store.id, label="till")
        db.session.commit()
        key_id = key.id
    f.login(client, ours, admin)
    token = f.csrf(client, "/console/coupons/pos-keys")
    r = client.post(
        "/console/coupons/pos-keys",
        data={"csrf_token": token, "store_id": our_store.id, "revoke": key_id},
    )
    assert r.status_code == 404
    with use_brand(theirs.id):
        db.session.expire_all()
        assert db.session.get(PosKey, key_id).active is True
