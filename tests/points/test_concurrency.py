"""Many transactions spending from one account at once: exact totals, never negative."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, text

from core.db import db
from core.tenancy import use_brand
from points import rules, services
from points.errors import InsufficientPoints
from points.models import PointsEntry, PointsLot
from tests.support.points import T0, check_invariants


def test_200_concurrent_spends_on_a_balance_for_50(app, brand, member):
    rules.update_settings(pending_days=0)
    # 50 lots of 10 points each: every spend takes exactly one lot's worth.
    for i in range(50):
        services.earn_for_purchase(
            member_id=member, amount_fen=1_000, idempotency_key=f"o{i}", now=T0
        )
    db.session.commit()
    assert services.balance(member).balance == 500
    brand_id = brand.id
    start = threading.Barrier(40)
    observed: list[int] = []
    stop = threading.Event()

    def watch():
        with app.app_context():
            while not stop.is_set():
                observed.append(
                    db.session.execute(
                        text("SELECT balance FROM points_account WHERE member_id = :m"),
                        {"m": member},
                    ).scalar_one()
                )
                db.session.rollback()
            db.session.remove()

    def attempt(i: int) -> str:
        if i < 40:
            start.wait()
        with app.app_context(), use_brand(brand_id):
            try:
                services.spend(
                    member_id=member, points=10, reason="mall", idempotency_key=f"spend-{i}"
                )
                db.session.commit()
                return "ok"
            except InsufficientPoints:
                db.session.rollback()
                return "refused"
            finally:
                db.session.remove()

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(attempt, range(200)))
    stop.set()
    watcher.join()

    assert results.count("ok") == 50
    assert results.count("refused") == 150
    db.session.expire_all()
    assert services.balance(member).balance == 0
    assert min(observed) >= 0
    spends = db.session.execute(
        select(func.count()).select_from(PointsEntry).where(PointsEntry.kind == "spend")
    ).scalar_one()
    assert spends == 50
    left = db.session.execute(select(func.sum(PointsLot.remaining))).scalar_one()
    assert left == 0
    check_invariants(member)


def test_same_key_raced_from_many_threads_has_one_effect(app, brand, member):
    rules.update_settings(pending_days=0)
    services.earn_for_purchase(member_id=member, amount_fen=100_000, idempotency_key="o", now=T0)
    db.session.commit()
    brand_id = brand.id
    start = threading.Barrier(20)

    def attempt(_):
        start.wait()
        with app.app_context(), use_brand(brand_id):
            try:
                e = services.spend(
                    member_id=member, points=7, reason="mall", idempotency_key="same"
                )
                db.session.commit()
                return e.id
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = set(pool.map(attempt, range(20)))
    assert len(ids) == 1
    db.session.expire_all()
    assert services.balance(member).balance == 993
    check_invariants(member)
