"""No oversell, no double redemption, no double spend: the races, on PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, text

from core.db import db
from core.tenancy import use_brand
from coupons import claims, issuance, mall, redemption
from coupons.models import (
    Coupon,
    CouponStockEntry,
    CouponTemplate,
    MallItem,
    MallOrder,
    PartnerCode,
)
from points import services as points
from tests import factories
from tests.support.concurrency import run_concurrently


def test_100_concurrent_claims_of_stock_10_issue_exactly_10(app, brand):
    tpl = factories.coupon_template(stock=10)
    members = [factories.member().id for _ in range(100)]
    results = run_concurrently(
        app,
        brand.id,
        100,
        lambda i: claims.claim(
            template_id=tpl.id, member_id=members[i], idempotency_key=f"tap-{i}"
        ).id,
    )
    ok = [r for r in results if r[0] == "ok"]
    assert len(ok) == 10
    assert {r[1] for r in results if r[0] == "error"} == {"SoldOut"}
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 10
    assert db.session.get(CouponTemplate, tpl.id).issued == 10
    ledger = db.session.scalar(select(func.sum(CouponStockEntry.delta_issued)))
    assert ledger == 10


def test_one_coupon_redeemed_from_two_tills_at_once_exactly_one_succeeds(app, brand, store):
    from tests import factories

    other_store = factories.store(brand)
    tpl = factories.coupon_template()
    member = factories.member().id
    coupon = issuance.issue(
        template_id=tpl.id, member_id=member, source="claim", idempotency_key="k1"
    )
    db.session.commit()
    stores = [store.id, other_store.id]
    for _round in range(5):  # several rounds: the race must hold every time

        def till(i: int, rnd: int = _round) -> int:
            return redemption.redeem(
                code=coupon.code,
                store_id=stores[i],
                order_id=f"till{i}-{rnd}",
                order_amount_fen=10000,
                idempotency_key=f"till{i}-{rnd}",
                channel="pos",
            ).id

        results = run_concurrently(app, brand.id, 2, till)
        assert sorted(r[0] for r in results) == ["error", "ok"], results
        assert [r[1] for r in results if r[0] == "error"] == ["CouponAlreadyRedeemed"]
        count = db.session.execute(
            text("SELECT count(*) FROM coupon_redemption WHERE status = 'done'")
        ).scalar()
        assert count == 1
        winner = next(i for i, r in enumerate(results) if r[0] == "ok")
        # Refund the order: the coupon comes back for the next round.
        redemption.reverse(store_id=stores[winner], order_id=f"till{winner}-{_round}")
        db.session.commit()


def test_200_concurrent_exchanges_paying_for_50(app, brand):
    tpl = factories.coupon_template(name="5元券", stock=None)
    item = factories.mall_item(tpl)
    member = factories.member().id
    points.adjust(member_id=member, points=5000, reason="test grant", idempotency_key="grant")
    db.session.commit()

    observed: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        with app.app_context():
            while not stop.is_set():
                observed.append(
                    db.session.execute(
                        text("SELECT balance FROM points_account WHERE member_id = :m"),
                        {"m": member},
                    ).scalar()
                )
                db.session.rollback()
            db.session.remove()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = run_concurrently(
            app,
            brand.id,
            200,
            lambda i: mall.exchange(
                item_id=item.id, member_id=member, idempotency_key=f"x-{i}"
            ).coupon_id,
        )
    finally:
        stop.set()
        watcher.join()
    ok = [r for r in results if r[0] == "ok"]
    assert len(ok) == 50
    assert {r[1] for r in results if r[0] == "error"} == {"InsufficientPoints"}
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 50
    assert db.session.scalar(select(func.count()).select_from(MallOrder)) == 50
    assert points.balance(member).balance == 0
    assert observed and min(observed) >= 0
    assert db.session.get(MallItem, item.id).sold == 50


def test_partner_codes_are_handed_out_once_each_under_concurrency(app, brand):
    tpl = factories.coupon_template(name="视频会员7天", kind="third_party", stock=None)
    n = issuance.import_partner_codes(
        template_id=tpl.id, lines=[f"PARTNER-{i:04d}" for i in range(20)], idempotency_key="f1"
    )
    db.session.commit()
    assert n == 20
    members = [factories.member().id for _ in range(40)]
    results = run_concurrently(
        app,
        brand.id,
        40,
        lambda i: issuance.issue(
            template_id=tpl.id, member_id=members[i], source="claim", idempotency_key=f"p{i}"
        ).partner_code,
    )
    codes = [r[1] for r in results if r[0] == "ok"]
    assert len(codes) == 20 and len(set(codes)) == 20
    assert {r[1] for r in results if r[0] == "error"} == {"SoldOut"}
    db.session.expire_all()
    assigned = db.session.scalar(
        select(func.count()).select_from(PartnerCode).where(PartnerCode.coupon_id.is_not(None))
    )
    assert assigned == 20
    # Importing the same file again adds nothing.
    assert (
        issuance.import_partner_codes(
            template_id=tpl.id, lines=["PARTNER-0001"], idempotency_key="f1"
        )
        == 0
    )


def test_concurrent_per_member_limit_holds(app, brand):
    tpl = factories.coupon_template(per_member_limit=2)
    member = factories.member().id
    results = run_concurrently(
        app,
        brand.id,
        20,
        lambda i: claims.claim(template_id=tpl.id, member_id=member, idempotency_key=f"t{i}").id,
    )
    assert sum(1 for r in results if r[0] == "ok") == 2
    with use_brand(brand.id):
        assert db.session.scalar(select(func.count()).select_from(Coupon)) == 2
