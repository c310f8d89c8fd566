"""Fixtures for the coupon tests: a brand in context, stores, members, templates."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest

from core.db import db
from core.tenancy import use_brand
from coupons import services
from coupons.models import CouponTemplate, MallItem
from members.identities import create_member_row
from tests import factories

_phones = itertools.count(1)


@pytest.fixture
def store(brand):
    return factories.store(brand)


def make_member(phone: str | None = None) -> int:
    member_id, _ = create_member_row(phone=phone or f"136{next(_phones):08d}", source="console")
    db.session.commit()
    return member_id


def make_template(**kw) -> CouponTemplate:
    """A coupon template through the service (5 yuan off, valid for 30 days), committed."""
    now = dt.datetime.now(dt.UTC)
    values = dict(
        name="5元现金券",
        kind="cash",
        value_fen=500,
        threshold_fen=0,
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
    )
    values.update(kw)
    tpl = services.create_template(**values)
    db.session.commit()
    return tpl


def make_item(tpl: CouponTemplate, **kw) -> MallItem:
    """A points-mall item for the template through the service (100 points), committed."""
    values = dict(template_id=tpl.id, title="100积分换5元券", price_points=100)
    values.update(kw)
    item = services.create_mall_item(**values)
    db.session.commit()
    return item


def run_concurrently(app, brand_id: int, n: int, fn) -> list:
    """Run fn(i) in n threads released together, each in its own app context and session.

    Each returns ("ok", value) after committing or ("error", exception class name).
    """
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        with app.app_context(), use_brand(brand_id):
            barrier.wait()
            try:
                value = fn(i)
                db.session.commit()
                results[i] = ("ok", value)
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                db.session.rollback()
                results[i] = ("error", type(exc).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results
