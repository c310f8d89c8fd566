"""The POS API over HTTP: one effect per repeated call, bad input refused, guessing blocked."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from coupons import issuance
from coupons.models import AVAILABLE, REDEEMED, Coupon, Redemption
from coupons.pos_api import create_key
from coupons.redemption import GUESS_LIMIT
from tests import factories


@pytest.fixture
def till(brand, store):
    _row, raw = create_key(store_id=store.id, label="till 1")
    db.session.commit()
    return {"Authorization": f"Bearer {raw}"}


def _coupon(**tpl_kw) -> Coupon:
    tpl = factories.coupon_template(**tpl_kw)
    c = issuance.issue(
        template_id=tpl.id,
        member_id=factories.member().id,
        source="claim",
        idempotency_key=f"k{tpl.id}",
    )
    db.session.commit()
    return c


def _redeem(client, brand, headers, code, amount=10000, key="r1", order="O1"):
    return client.post(
        f"/api/pos/{brand.slug}/coupons/redeem",
        json={"code": code, "order_id": order, "order_amount_fen": amount, "idempotency_key": key},
        headers=headers,
    )


def test_repeated_pos_call_has_one_effect(client, brand, till):
    c = _coupon(threshold_fen=5000, value_fen=500)
    first = _redeem(client, brand, till, c.code)
    again = _redeem(client, brand, till, c.code)
    assert first.status_code == 200 and again.status_code == 200
    assert first.get_json() == again.get_json()
    assert first.get_json()["discount_fen"] == 500
    assert db.session.scalar(select(func.count()).select_from(Redemption)) == 1
    db.session.expire_all()
    assert db.session.get(Coupon, c.id).status == REDEEMED
    # Another order with the same coupon is refused.
    other = _redeem(client, brand, till, c.code, key="r2", order="O2")
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "coupon_redeemed"


def test_reverse_on_refund_is_idempotent(client, brand, till):
    c = _coupon()
    assert _redeem(client, brand, till, c.code).status_code == 200
    for _ in range(2):
        r = client.post(
            f"/api/pos/{brand.slug}/orders/reverse", json={"order_id": "O1"}, headers=till
        )
        assert r.status_code == 200
    db.session.expire_all()
    assert db.session.get(Coupon, c.id).status == AVAILABLE
    assert db.session.scalar(select(Redemption.status)) == "reversed"
    # Usable again for a new order.
    assert _redeem(client, brand, till, c.code, key="r9", order="O9").status_code == 200


@pytest.mark.parametrize("amount", [0, -100, "100", 1.5, None])
def test_zero_negative_or_non_integer_amounts_are_refused(client, brand, till, amount):
    c = _coupon()
    r = _redeem(client, brand, till, c.code, amount=amount)
    assert r.status_code == 400
    assert r.get_json()["error"]["field"] == "order_amount_fen"
    db.session.expire_all()
    assert db.session.get(Coupon, c.id).status == AVAILABLE


def test_expired_coupon_is_refused(client, brand, till):
    now = dt.datetime.now(dt.UTC)
    c = _coupon()
    c.valid_until = now - dt.timedelta(minutes=1)
    db.session.commit()
    r = _redeem(client, brand, till, c.code)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "coupon_expired"


def test_wrong_store_is_refused(client, brand, store, till):
    elsewhere = factories.store(brand)
    c = _coupon(store_ids=[elsewhere.id])
    r = _redeem(client, brand, till, c.code)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "coupon_not_usable"
    assert r.get_json()["error"]["field"] == "store"


def test_below_threshold_is_refused(client, brand, till):
    c = _coupon(threshold_fen=10000, value_fen=1000)
    r = _redeem(client, brand, till, c.code, amount=9999)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "below_threshold"
    assert _redeem(client, brand, till, c.code, amount=10000).get_json()["discount_fen"] == 1000


def test_percent_discount_is_capped(client, brand, till):
    c = _coupon(kind="percent", value_fen=0, percent_off=20, cap_fen=3000)
    check = client.post(
        f"/api/pos/{brand.slug}/coupons/check",
        json={"code": c.code, "order_amount_fen": 10000},
        headers=till,
    )
    assert check.get_json()["discount_fen"] == 2000
    assert _redeem(client, brand, till, c.code, amount=50000).get_json()["discount_fen"] == 3000


def test_unknown_and_foreign_codes_get_the_same_answer(client, brand, till):
    from coupons import codes

    other = factories.brand()
    with use_brand(other.id):
        foreign = _coupon()
    unknown = codes.new_code()
    answers = [
        _redeem(client, brand, till, foreign.code, key="a"),
        _redeem(client, brand, till, unknown, key="b"),
        _redeem(client, brand, till, "NOT-A-CODE", key="c"),
    ]
    assert {r.status_code for r in answers} == {404}
    assert len({r.get_data() for r in answers}) == 1
    with use_brand(other.id):
        db.session.expire_all()
        assert db.session.get(Coupon, foreign.id).status == AVAILABLE


def test_guessing_codes_is_rate_limited(client, brand, till):
    from coupons import codes

    c = _coupon()
    for i in range(GUESS_LIMIT):
        assert _redeem(client, brand, till, codes.new_code(), key=f"g{i}").status_code == 404
    # Over the limit, even the right code is not looked up.
    r = _redeem(client, brand, till, c.code, key="real")
    assert r.status_code == 429
    db.session.expire_all()
    assert db.session.get(Coupon, c.id).status == AVAILABLE


def test_bad_api_key_is_refused(client, brand, store):
    c = _coupon()
    r = _redeem(client, brand, {"Authorization": "Bearer nope"}, c.code)
    assert r.status_code == 403
    assert _redeem(client, brand, {}, c.code).status_code == 403


def test_a_key_of_another_brand_does_not_work_here(client, brand, till):
    other = factories.brand()
    c = _coupon()
    r = _redeem(client, other, till, c.code)
    assert r.status_code == 403
