"""The batch credit: new accounts, debt repaid first, repeats, conflicts, unknown members,
expiry and the brand's day, the card sync asked for once, and a fixed number of statements."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, func, select

from core.db import db
from core.errors import ValidationError
from core.jobs import OutboxJob
from core.tenancy import use_brand
from members.models import DELETED
from points import rules, services
from points.errors import IdempotencyConflict, InvalidPoints, UnknownMember
from points.models import EXPIRE_NEVER, EXPIRE_YEAR_END, PointsEntry, PointsLot
from points.services import Credit
from tests import factories
from tests.support.points import T0, account_of, check_invariants
from tests.support.statements import Statements


def _entries() -> int:
    return db.session.execute(select(func.count()).select_from(PointsEntry)).scalar_one()


def _with_debt(member_id: int, debt: int) -> None:
    """Give a member ``debt`` points of debt: earn, spend it all, refund the purchase."""
    rules.update_settings(pending_days=0)
    services.earn_for_purchase(
        member_id=member_id, amount_fen=debt * 100, idempotency_key=f"o-{member_id}", now=T0
    )
    services.spend(
        member_id=member_id, points=debt, reason="mall", idempotency_key=f"s-{member_id}", now=T0
    )
    services.refund(
        original_key=f"o-{member_id}",
        refunded_fen=debt * 100,
        order_total_fen=debt * 100,
        idempotency_key=f"r-{member_id}",
        now=T0,
    )
    db.session.commit()
    assert services.balance(member_id).debt == debt


def test_a_new_account_is_opened_and_credited(member):
    assert account_of(member) is None
    out = services.credit_many(
        [Credit(member_id=member, points=50, key="win-1", reason=" 大转盘 ")], now=T0
    )
    db.session.commit()
    result = out["win-1"]
    assert result.ok and result.written
    entry = db.session.get(PointsEntry, result.entry_id)
    assert (entry.kind, entry.points, entry.delta_balance, entry.delta_debt) == (
        "adjust",
        50,
        50,
        0,
    )
    assert (entry.reason, entry.operator, entry.member_id) == ("大转盘", None, member)
    account = check_invariants(member)
    assert (account.balance, account.lifetime_earned, account.last_entry_id) == (
        50,
        50,
        entry.id,
    )
    lot = db.session.execute(select(PointsLot)).scalar_one()
    assert (lot.entry_id, lot.amount, lot.remaining, lot.released) == (entry.id, 50, 50, True)
    # The member reads it in their history like any adjustment.
    assert services.history(member).items[0].reason == "大转盘"


def test_debt_is_repaid_first_across_two_items_of_one_member(member):
    _with_debt(member, 150)
    other = factories.member().id
    out = services.credit_many(
        [
            Credit(member_id=member, points=100, key="a", reason="wheel"),
            Credit(member_id=other, points=10, key="b", reason="wheel"),
            Credit(member_id=member, points=80, key="c", reason="wheel"),
        ],
        now=T0,
    )
    db.session.commit()
    a, c = (db.session.get(PointsEntry, out[k].entry_id) for k in ("a", "c"))
    assert (a.delta_balance, a.delta_debt) == (0, -100)
    assert (c.delta_balance, c.delta_debt) == (30, -50)
    assert a.id < c.id  # the batch's order
    lots = {
        lot.entry_id: lot.remaining
        for lot in db.session.scalars(select(PointsLot).where(PointsLot.entry_id.in_([a.id, c.id])))
    }
    assert lots == {a.id: 0, c.id: 30}
    account = check_invariants(member)
    assert (account.balance, account.debt, account.last_entry_id) == (30, 0, c.id)
    assert account.lifetime_earned == 150 + 180
    assert check_invariants(other).balance == 10


def test_the_same_member_twice_and_a_repeat_of_the_whole_batch(member):
    other = factories.member().id
    batch = [
        Credit(member_id=member, points=5, key="k1", reason="wheel"),
        Credit(member_id=member, points=7, key="k2", reason="wheel"),
        Credit(member_id=other, points=9, key="k3", reason="wheel"),
    ]
    first = services.credit_many(batch, now=T0)
    db.session.commit()
    assert all(r.written for r in first.values())
    assert (services.balance(member).balance, services.balance(other).balance) == (12, 9)
    before = _entries()
    again = services.credit_many(batch, now=T0 + dt.timedelta(hours=1))
    db.session.commit()
    assert {k: r.entry_id for k, r in again.items()} == {k: r.entry_id for k, r in first.items()}
    assert not any(r.written for r in again.values())
    assert _entries() == before
    assert (services.balance(member).balance, services.balance(other).balance) == (12, 9)
    assert account_of(member).lifetime_earned == 12
    check_invariants(member)
    check_invariants(other)


def test_a_partial_repeat_writes_only_the_new_keys(member):
    services.credit_many([Credit(member_id=member, points=5, key="k1", reason="wheel")], now=T0)
    db.session.commit()
    out = services.credit_many(
        [
            Credit(member_id=member, points=5, key="k1", reason="wheel"),
            Credit(member_id=member, points=6, key="k2", reason="wheel"),
        ],
        now=T0,
    )
    db.session.commit()
    assert (out["k1"].written, out["k2"].written) == (False, True)
    assert _entries() == 2
    assert check_invariants(member).balance == 11


def test_a_key_used_for_another_member_or_kind_refuses_that_item_only(member):
    other = factories.member().id
    services.adjust(member_id=other, points=3, reason="gift", idempotency_key="taken")
    rules.update_settings(pending_days=0)
    services.earn_for_purchase(member_id=member, amount_fen=1_000, idempotency_key="order-1")
    db.session.commit()
    before = _entries()
    out = services.credit_many(
        [
            Credit(member_id=member, points=5, key="taken", reason="wheel"),
            Credit(member_id=member, points=5, key="order-1", reason="wheel"),
            Credit(member_id=member, points=6, key="fresh", reason="wheel"),
        ],
        now=T0,
    )
    db.session.commit()
    assert isinstance(out["taken"].error, IdempotencyConflict)
    assert isinstance(out["order-1"].error, IdempotencyConflict)
    assert out["taken"].entry_id is None and not out["taken"].written
    assert out["fresh"].written
    assert _entries() == before + 1
    assert check_invariants(member).balance == 10 + 6
    assert check_invariants(other).balance == 3


def test_unknown_members_and_bad_items_are_reported_each(brand, member):
    gone = factories.member()
    gone.status = DELETED
    other_brand = factories.brand()
    with use_brand(other_brand.id):
        stranger = factories.member().id
    db.session.commit()
    out = services.credit_many(
        [
            Credit(member_id=999_999, points=5, key="nobody", reason="wheel"),
            Credit(member_id=stranger, points=5, key="stranger", reason="wheel"),
            Credit(member_id=gone.id, points=5, key="gone", reason="wheel"),
            Credit(member_id=member, points=0, key="zero", reason="wheel"),
            Credit(member_id=member, points=-3, key="minus", reason="wheel"),
            Credit(member_id=member, points=5, key="", reason="wheel"),
            Credit(member_id=member, points=5, key="no-reason", reason="  "),
            Credit(member_id=member, points=5, key="good", reason="wheel"),
        ],
        now=T0,
    )
    db.session.commit()
    for key in ("nobody", "stranger", "gone"):
        assert isinstance(out[key].error, UnknownMember), key
    for key in ("zero", "minus", ""):
        assert isinstance(out[key].error, InvalidPoints), key
    assert isinstance(out["no-reason"].error, ValidationError)
    assert out["no-reason"].error.field == "reason"
    assert out["good"].written
    assert _entries() == 1
    assert account_of(gone.id) is None
    with use_brand(other_brand.id):
        assert account_of(stranger) is None
    check_invariants(member)


def test_a_batch_of_only_refusals_writes_nothing(member):
    out = services.credit_many([Credit(member_id=999_999, points=5, key="k", reason="r")])
    assert not out["k"].ok
    assert services.credit_many([]) == {}
    db.session.commit()
    assert _entries() == 0
    assert db.session.execute(select(func.count()).select_from(OutboxJob)).scalar_one() == 0


def test_a_key_twice_in_one_batch_or_a_kind_it_cannot_write_is_a_caller_bug(member):
    with pytest.raises(ValueError, match="twice"):
        services.credit_many(
            [
                Credit(member_id=member, points=5, key="k", reason="r"),
                Credit(member_id=member, points=5, key="k", reason="r"),
            ]
        )
    with pytest.raises(ValueError):
        services.credit_many([Credit(member_id=member, points=5, key="k", reason="r")], kind="earn")
    assert _entries() == 0


def test_expiry_and_the_brand_s_local_day(member):
    # 23:30 UTC on 10 March is 07:30 on 11 March in Shanghai.
    late = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)
    rules.update_settings(expiry_policy=EXPIRE_YEAR_END, expiry_months=12)
    out = services.credit_many([Credit(member_id=member, points=5, key="y", reason="r")], now=late)
    rules.update_settings(expiry_policy=EXPIRE_NEVER)
    out.update(services.credit_many([Credit(member_id=member, points=5, key="n", reason="r")]))
    db.session.commit()
    y, n = (db.session.get(PointsEntry, out[k].entry_id) for k in ("y", "n"))
    assert y.local_day == dt.date(2026, 3, 11)
    assert y.occurred_at == late
    lots = {lot.entry_id: lot for lot in db.session.scalars(select(PointsLot))}
    # The end of 2027 in Shanghai (earned in March 2026, plus 12 months).
    assert lots[y.id].expires_at == dt.datetime(2027, 12, 31, 16, 0, tzinfo=dt.UTC)
    assert lots[y.id].earned_at == lots[y.id].available_at == late
    assert lots[n.id].expires_at is None
    check_invariants(member)


def test_the_card_sync_is_asked_for_once_per_batch(member):
    members = [member] + [factories.member().id for _ in range(4)]
    db.session.execute(delete(OutboxJob))
    db.session.commit()
    with Statements() as sent:
        services.credit_many(
            [Credit(member_id=m, points=5, key=f"k{m}", reason="r") for m in members], now=T0
        )
    db.session.commit()
    assert sum("INSERT INTO outbox_job" in s for s in sent) == 1
    jobs = db.session.scalars(select(OutboxJob)).all()
    assert [j.func for j in jobs] == ["points.jobs.sync_members"]


def test_a_batch_takes_the_same_few_statements_whatever_its_size(brand):
    members = [factories.member().id for _ in range(60)]

    def run(tag: str, size: int) -> int:
        items = [
            Credit(member_id=m, points=1 + i % 3, key=f"{tag}-{i}", reason="r")
            for i, m in enumerate(members[:size] * 2)  # each member twice, some accounts new
        ]
        with Statements() as sent:
            out = services.credit_many(items, now=T0)
        assert all(r.written for r in out.values())
        db.session.commit()
        return len(sent)

    run("warm", 1)  # the brand's settings cached, this time slot's card sync queued
    small, large = run("a", 3), run("b", 60)
    assert small == large <= 8
    for m in members:
        check_invariants(m)
