"""Batch credits racing each other and spends on PostgreSQL: overlapping members and keys,
members in debt, a key two members claim at once. Totals exact, every key written once,
no deadlock."""

from __future__ import annotations

import random
import threading
from collections import defaultdict

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from points import rules, services
from points.errors import IdempotencyConflict, InsufficientPoints
from points.models import PointsEntry, PointsLot
from points.services import Credit
from tests import factories
from tests.support.points import T0, account_of, check_invariants

MEMBERS = 16
KEYS = 400
CREDITORS = 12
SPENDERS = 4
BATCHES = 8
BATCH = 40
SPENDS = 25


def _debt(member_id: int, points: int) -> None:
    services.earn_for_purchase(
        member_id=member_id, amount_fen=points * 100, idempotency_key=f"o-{member_id}", now=T0
    )
    services.spend(
        member_id=member_id, points=points, reason="mall", idempotency_key=f"s-{member_id}"
    )
    services.refund(
        original_key=f"o-{member_id}",
        refunded_fen=points * 100,
        order_total_fen=points * 100,
        idempotency_key=f"r-{member_id}",
    )


def test_concurrent_batches_and_spends_keep_every_total_exact(app, brand):
    rules.update_settings(pending_days=0)
    members = [factories.member().id for _ in range(MEMBERS)]
    # A few members owe points (their later credits repay it first), a few hold some.
    for m in members[:3]:
        _debt(m, 40)
    for i, m in enumerate(members[3:6]):
        services.adjust(member_id=m, points=30, reason="start", idempotency_key=f"start-{i}")
    db.session.commit()
    net_before = {m: services.balance(m).net for m in members}
    # Each key means one credit (member and points), whoever sends it; the "claimed" keys
    # are sent for two different members at once, so only one of them may have it.
    meaning = {f"w{k}": (members[k % MEMBERS], 1 + k % 9) for k in range(KEYS)}
    claimed = [f"c{k}" for k in range(CREDITORS // 2)]
    brand_id = brand.id
    start = threading.Barrier(CREDITORS + SPENDERS)
    lock = threading.Lock()
    sent: set[str] = set()
    claims: list[tuple[str, int, str]] = []  # (key, member, outcome)
    spent: dict[int, int] = defaultdict(int)
    failures: list[str] = []

    def creditor(n: int) -> None:
        rnd = random.Random(n)
        with app.app_context(), use_brand(brand_id):
            start.wait()
            for b in range(BATCHES):
                # A slice every key falls in once, plus keys other threads send too.
                own = [f"w{k}" for k in range(KEYS) if k % (CREDITORS * BATCHES) == n * BATCHES + b]
                keys = list(dict.fromkeys(own + rnd.sample(sorted(meaning), BATCH)))
                rnd.shuffle(keys)
                items = [Credit(member_id=meaning[k][0], points=meaning[k][1], key=k,
                                reason="wheel") for k in keys]  # fmt: skip
                if b < 2:
                    c = claimed[n // 2]  # threads 2k and 2k+1, for two members
                    items.append(Credit(member_id=members[n % MEMBERS], points=1000, key=c,
                                        reason="claim"))  # fmt: skip
                try:
                    out = services.credit_many(items)
                    db.session.commit()
                except Exception as exc:  # noqa: BLE001 - the test reports it
                    db.session.rollback()
                    with lock:
                        failures.append(f"credit {n}/{b}: {exc!r}")
                    continue
                with lock:
                    for item in items:
                        result = out[item.key]
                        if item.key.startswith("c"):
                            claims.append((item.key, item.member_id, type(result.error).__name__))
                        elif not result.ok:
                            failures.append(f"{item.key}: {result.error!r}")
                        else:
                            sent.add(item.key)
            db.session.remove()

    def spender(n: int) -> None:
        rnd = random.Random(100 + n)
        with app.app_context(), use_brand(brand_id):
            start.wait()
            for i in range(SPENDS):
                m = rnd.choice(members)
                points = rnd.randint(1, 12)
                try:
                    services.spend(
                        member_id=m, points=points, reason="mall", idempotency_key=f"sp{n}-{i}"
                    )
                    db.session.commit()
                    with lock:
                        spent[m] += points
                except InsufficientPoints:
                    db.session.rollback()
                except Exception as exc:  # noqa: BLE001 - the test reports it
                    db.session.rollback()
                    with lock:
                        failures.append(f"spend {n}/{i}: {exc!r}")
            db.session.remove()

    threads = [threading.Thread(target=creditor, args=(n,)) for n in range(CREDITORS)]
    threads += [threading.Thread(target=spender, args=(n,)) for n in range(SPENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert sent == set(meaning)  # every key was sent, and accepted each time

    db.session.expire_all()
    entries = db.session.execute(
        select(PointsEntry.idempotency_key, PointsEntry.member_id, PointsEntry.points).where(
            PointsEntry.kind == "adjust", PointsEntry.reason.in_(("wheel", "claim"))
        )
    ).all()
    keys = [e.idempotency_key for e in entries]
    assert len(keys) == len(set(keys))  # every key written exactly once
    assert {e.idempotency_key: (e.member_id, e.points) for e in entries if e.points < 1000} == (
        meaning
    )
    # A claimed key went to one member; the other claimant was refused.
    owner = {e.idempotency_key: e.member_id for e in entries if e.points == 1000}
    assert set(owner) == set(claimed)
    for key, member_id, outcome in claims:
        expected = "NoneType" if owner[key] == member_id else IdempotencyConflict.__name__
        assert outcome == expected, (key, member_id, outcome, owner[key])

    credited: dict[int, int] = defaultdict(int)
    for e in entries:
        credited[e.member_id] += e.points
    for m in members:
        account = check_invariants(m)  # balance = entries' deltas = released lots' remaining
        released = db.session.execute(
            select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
                PointsLot.account_id == account.id, PointsLot.released.is_(True)
            )
        ).scalar_one()
        assert account.balance == released
        assert account.balance - account.debt == net_before[m] + credited[m] - spent[m]
        earned = db.session.execute(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.member_id == m, PointsEntry.points > 0, PointsEntry.kind != "return"
            )
        ).scalar_one()
        assert account.lifetime_earned == earned
        assert account_of(m).lifetime_spent == sum(
            -p
            for p in db.session.scalars(
                select(PointsEntry.points).where(
                    PointsEntry.member_id == m, PointsEntry.kind == "spend"
                )
            )
        )
    assert sum(spent.values()) > 0  # the spends did race the credits


def test_a_key_another_transaction_writes_meanwhile_refuses_that_item_only(app, brand):
    """B checks the keys before A commits one of them for another member: B's insert waits
    for A, skips that key, and B's batch is done again without it (its debt math too)."""
    rules.update_settings(pending_days=0)
    x, y = factories.member().id, factories.member().id
    _debt(y, 30)
    db.session.commit()
    brand_id = brand.id
    a_wrote, a_may_commit = threading.Event(), threading.Event()
    outcome: dict = {}

    def a() -> None:
        with app.app_context(), use_brand(brand_id):
            services.credit_many([Credit(member_id=x, points=7, key="K", reason="r")])
            a_wrote.set()
            a_may_commit.wait(30)
            db.session.commit()
            db.session.remove()

    def b() -> None:
        with app.app_context(), use_brand(brand_id):
            outcome.update(
                services.credit_many(
                    [
                        Credit(member_id=y, points=100, key="K", reason="r"),
                        Credit(member_id=y, points=50, key="L", reason="r"),
                    ]
                )
            )
            db.session.commit()
            db.session.remove()

    ta = threading.Thread(target=a)
    ta.start()
    assert a_wrote.wait(30)
    tb = threading.Thread(target=b)
    tb.start()
    tb.join(1.0)  # B is waiting for A's key
    assert tb.is_alive()
    a_may_commit.set()
    ta.join(30)
    tb.join(30)
    assert isinstance(outcome["K"].error, IdempotencyConflict)
    assert outcome["L"].written
    db.session.expire_all()
    entry = db.session.get(PointsEntry, outcome["L"].entry_id)
    assert (entry.delta_balance, entry.delta_debt) == (20, -30)
    assert (check_invariants(y).balance, check_invariants(y).debt) == (20, 0)
    assert check_invariants(x).balance == 7
