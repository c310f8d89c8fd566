"""Binding customers to a store and a guide: each binding mode, the protection period, the
validity, forced changes (the third in 90 days refused), a guide leaving, a guide never bound
to another guide, the till, member merges, and two scans at once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from guide_distribution import binding, handover, settings
from guide_distribution.models import BindingEvent, CustomerBinding, OrderAttribution
from members.activation import record_scan
from members.merge import merge_members
from shop import checkout
from shop.pricing import Item
from tests import factories
from tests.shop.conftest import ADDRESS, member
from tests.support.concurrency import run_concurrently

DAY = dt.timedelta(days=1)


def _guides(shop, n=2, store=None):
    return [factories.staff(shop.brand, role="guide", store=store or shop.store) for _ in range(n)]


def _old_member(**kw):
    """A customer the brand has known for a while."""
    m = member(**kw)
    m.created_at = utcnow() - 30 * DAY
    db.session.commit()
    return m


def _binding(m) -> CustomerBinding | None:
    db.session.expire_all()
    return db.session.execute(
        select(CustomerBinding).where(CustomerBinding.member_id == m.id)
    ).scalar_one_or_none()


def _events(m) -> list[BindingEvent]:
    return list(
        db.session.execute(
            select(BindingEvent).where(BindingEvent.member_id == m.id).order_by(BindingEvent.id)
        ).scalars()
    )


def _scan(m, guide):
    record_scan(member_id=m.id, guide_id=guide.id, store_id=guide.store_id, scene=f"g:{guide.id}")
    db.session.commit()


def _order(shop, m, key):
    placed = checkout.checkout(
        member_id=m.id,
        items=[Item(shop.sku.id, 1)],
        channel="mini_program",
        idempotency_key=key,
        address=ADDRESS,
    )
    db.session.commit()
    return db.session.execute(
        select(OrderAttribution).where(OrderAttribution.order_id == placed.order.id)
    ).scalar_one()


def test_first_guide_wins_while_unbound_and_the_scan_records_how(shop):
    a, b = _guides(shop)
    m = _old_member()
    _scan(m, a)
    row = _binding(m)
    assert (row.guide_id, row.store_id, row.source) == (a.id, a.store_id, "scan")
    assert row.protected_until is not None and row.expires_at is None  # permanent by default
    later = utcnow() + 20 * DAY  # past the 15 days of protection
    out = binding.bind(member_id=m.id, guide_id=b.id, source="scan", now=later)
    db.session.commit()
    assert out.result == binding.KEPT and _binding(m).guide_id == a.id
    (event,) = _events(m)
    assert (event.old_guide_id, event.new_guide_id, event.source) == (None, a.id, "scan")
    assert (event.actor_kind, event.actor_id) == ("member", m.id)


def test_every_scan_takes_over_only_after_the_protection_period(shop):
    settings.update_settings(bind_mode="every_scan", protection_days=15)
    db.session.commit()
    a, b = _guides(shop)
    m = _old_member()
    _scan(m, a)
    _scan(m, b)  # inside protection: stays with A
    assert _binding(m).guide_id == a.id
    inside = utcnow() + 14 * DAY
    assert binding.bind(member_id=m.id, guide_id=b.id, source="scan", now=inside).result == (
        binding.PROTECTED
    )
    after = utcnow() + 16 * DAY
    out = binding.bind(member_id=m.id, guide_id=b.id, source="scan", now=after)
    db.session.commit()
    assert out.result == binding.BOUND
    row = _binding(m)
    assert row.guide_id == b.id and row.protected_until > after
    assert [(e.old_guide_id, e.new_guide_id) for e in _events(m)] == [(None, a.id), (a.id, b.id)]


def test_new_customers_only(shop):
    settings.update_settings(bind_mode="new_only")
    db.session.commit()
    a, _b = _guides(shop)
    known = _old_member()
    _scan(known, a)
    assert _binding(known).guide_id is None  # known to the brand before: store only
    assert _binding(known).store_id == a.store_id
    # A consumer activating through the guide's code: the record is made by the visit
    fresh = factories.member(activated=True, guide=a, openid="oa-new-1")
    db.session.commit()
    assert _binding(fresh).guide_id == a.id and _binding(fresh).source == "activation"
    # A recent record that already bought something is not new either
    buyer = member()
    _order(shop, buyer, "k-buyer")
    _scan(buyer, a)
    assert _binding(buyer) is None or _binding(buyer).guide_id is None


def test_a_binding_valid_for_n_days_lapses_and_another_guide_may_take_it(shop):
    settings.update_settings(validity_days=30, protection_days=0)
    db.session.commit()
    a, b = _guides(shop)
    m = _old_member()
    _scan(m, a)
    row = _binding(m)
    assert row.protected_until is None
    assert dt.timedelta(days=29) < row.expires_at - row.bound_at <= dt.timedelta(days=30)
    later = utcnow() + 31 * DAY
    assert binding.bind(member_id=m.id, guide_id=b.id, source="scan", now=later).result == (
        binding.BOUND
    )


def test_a_forced_change_is_audited_and_the_third_in_90_days_is_refused(shop):
    a, b, c = _guides(shop, 3)
    m = _old_member()
    _scan(m, a)
    admin = factories.staff(shop.brand, role="brand_admin")
    from core.audit import Actor, acting_as

    with acting_as(Actor("staff", admin.id, admin.name)):
        with pytest.raises(ValidationError):
            binding.force_change(member_id=m.id, guide_id=b.id, reason="  ")
        binding.force_change(member_id=m.id, guide_id=b.id, reason="客户要求更换导购")
        db.session.commit()
        assert _binding(m).guide_id == b.id  # inside A's protection: an operator may
        binding.force_change(member_id=m.id, guide_id=c.id, reason="门店调整")
        db.session.commit()
        with pytest.raises(Conflict):
            binding.force_change(member_id=m.id, guide_id=a.id, reason="再次调整")
        db.session.rollback()
        # 91 days later the window has room again
        assert binding.force_change(
            member_id=m.id, guide_id=a.id, reason="再次调整", now=utcnow() + 91 * DAY
        )
    forced = [e for e in _events(m) if e.source == "forced"]
    assert [(e.new_guide_id, e.reason, e.actor_kind, e.actor_id) for e in forced[:2]] == [
        (b.id, "客户要求更换导购", "staff", admin.id),
        (c.id, "门店调整", "staff", admin.id),
    ]
    audits = db.session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "guide_binding.forced")
    )
    assert audits == 3


def test_another_brands_guide_binds_nothing(shop):
    other = factories.brand()
    stranger = factories.staff(other, role="guide", store=factories.store(other))
    m = _old_member()
    assert binding.bind(member_id=m.id, guide_id=stranger.id, source="scan").result == (
        binding.NO_GUIDE
    )
    with pytest.raises(NotFound):
        binding.force_change(member_id=m.id, guide_id=stranger.id, reason="x")
    assert _binding(m) is None


def test_a_guide_is_never_bound_as_another_guides_customer(shop):
    a, b = _guides(shop)
    guide_b_as_member = _old_member()
    guide_b_as_member.phone = b.phone
    db.session.commit()
    _scan(guide_b_as_member, a)
    row = _binding(guide_b_as_member)
    assert row is not None and row.guide_id is None and row.store_id == a.store_id
    with pytest.raises(Conflict):
        binding.force_change(member_id=guide_b_as_member.id, guide_id=a.id, reason="试试")


def test_a_guide_leaving_spreads_customers_evenly_and_orders_keep_their_guide(shop):
    leaving, b, c = _guides(shop, 3)
    other_store = factories.store(shop.brand)
    (elsewhere,) = _guides(shop, 1, store=other_store)
    customers = [_old_member() for _ in range(7)]
    for m in customers:
        _scan(m, leaving)
    before = _order(shop, customers[0], "k-before")
    assert before.guide_id == leaving.id
    taken = handover.hand_over(guide_id=leaving.id)
    db.session.commit()
    assert taken == {b.id: 4, c.id: 3}
    rows = [_binding(m) for m in customers]
    assert {r.store_id for r in rows} == {shop.store.id}  # they stay with the store
    assert sorted(r.guide_id for r in rows).count(b.id) == 4
    assert elsewhere.id not in {r.guide_id for r in rows}
    db.session.expire_all()
    assert db.session.get(OrderAttribution, before.id).guide_id == leaving.id
    after = _order(shop, customers[0], "k-after")
    assert after.guide_id == rows[0].guide_id != leaving.id
    events = [e for m in customers for e in _events(m) if e.source == "guide_left"]
    assert len(events) == 7 and {e.old_guide_id for e in events} == {leaving.id}


def test_a_guide_leaving_to_a_named_guide_or_with_nobody_left(shop):
    leaving, b = _guides(shop)
    lonely_store = factories.store(shop.brand)
    (alone,) = _guides(shop, 1, store=lonely_store)
    ms = [_old_member() for _ in range(3)]
    for m in ms:
        _scan(m, leaving)
    named = _guides(shop, 1, store=lonely_store)[0]
    assert handover.hand_over(guide_id=leaving.id, to_guide_id=named.id) == {named.id: 3}
    db.session.commit()
    assert {_binding(m).guide_id for m in ms} == {named.id}
    assert {_binding(m).store_id for m in ms} == {shop.store.id}
    named.active = False
    db.session.commit()
    with pytest.raises(ValidationError):
        handover.hand_over(guide_id=alone.id)  # no other active guide in that store
    with pytest.raises(ValidationError):
        handover.hand_over(guide_id=b.id, to_guide_id=b.id)


def test_attribution_follows_the_binding_at_order_time(shop):
    a, b = _guides(shop)
    m = _old_member()
    _scan(m, a)
    first = _order(shop, m, "k1")
    binding.force_change(member_id=m.id, guide_id=b.id, reason="客户要求")
    db.session.commit()
    second = _order(shop, m, "k2")
    assert (first.guide_id, first.source) == (a.id, "binding")
    assert (second.guide_id, second.guide_store_id) == (b.id, b.store_id)
    db.session.expire_all()
    assert db.session.get(OrderAttribution, first.id).guide_id == a.id


def test_the_cashiers_guide_at_the_till_binds_an_unbound_customer(client, shop):
    from coupons import services as coupon_services

    (a,) = _guides(shop, 1)
    m = _old_member()
    _row, key = coupon_services.create_key(store_id=shop.store.id, label="till 1")
    db.session.commit()
    resp = client.post(
        f"/api/pos/{shop.brand.slug}/orders",
        json={
            "idempotency_key": "sale-1",
            "pos_order_no": "POS0001",
            "member": {"phone": m.phone},
            "guide_phone": a.phone,
            "lines": [{"sku_code": shop.sku.code, "unit_price_fen": 2000, "quantity": 1}],
            "pay_fen": 2000,
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 201, resp.get_json()
    row = _binding(m)
    assert (row.guide_id, row.source) == (a.id, "till")


def test_a_merge_keeps_one_binding_and_the_whole_history(shop):
    a, b = _guides(shop)
    kept, merged = _old_member(), _old_member()
    _scan(merged, b)
    db.session.commit()
    record = merge_members(kept_id=kept.id, merged_id=merged.id, reason="same person")
    db.session.commit()
    assert (record.counts["guide_binding"], record.counts["guide_binding_events"]) == (1, 1)
    assert db.session.scalar(select(func.count()).select_from(CustomerBinding)) == 1
    assert _binding(kept).guide_id == b.id
    assert len(_events(kept)) == 1
    # both bound: the kept member's guide stays
    k2, m2 = _old_member(), _old_member()
    _scan(k2, a)
    _scan(m2, b)
    merge_members(kept_id=k2.id, merged_id=m2.id, reason="same person")
    db.session.commit()
    assert _binding(k2).guide_id == a.id and _binding(m2) is None
    assert len(_events(k2)) == 2


def test_two_scans_of_one_customer_at_once_give_one_binding(app, shop):
    guides = _guides(shop, 4)
    m = _old_member()
    ids = [g.id for g in guides]

    def scan(i):
        return binding.bind(member_id=m.id, guide_id=ids[i % 4], source="scan").result

    results = run_concurrently(app, shop.brand.id, 8, scan)
    assert all(r[0] == "ok" for r in results), results
    assert sorted(r[1] for r in results).count(binding.BOUND) == 1
    rows = db.session.execute(select(CustomerBinding)).scalars().all()
    assert len(rows) == 1
    events = _events(m)
    assert len(events) == 1 and events[0].new_guide_id == rows[0].guide_id


def test_activating_with_a_guides_code_binds_a_new_customer_but_never_a_guide(shop):
    a, b = _guides(shop)
    from members.activation import activate_member

    new, created = activate_member(
        phone="13900000031", oa_openid="o-new-31", guide_id=a.id, store_id=a.store_id,
        source="oa", consent_version="v1",
    )  # fmt: skip
    db.session.commit()
    row = _binding(new)
    assert created and row.guide_id == a.id and row.store_id == a.store_id
    assert row.protected_until is not None and [e.source for e in _events(new)] == ["activation"]
    # Guide b activates their own member card from guide a's code: a service store, no guide.
    guide_b, created = activate_member(
        phone=b.phone, oa_openid="o-guide-b", guide_id=a.id, store_id=a.store_id,
        source="oa", consent_version="v1",
    )  # fmt: skip
    db.session.commit()
    row = _binding(guide_b)
    assert created and row.guide_id is None and row.store_id == a.store_id
    # A guide no longer active binds nothing, not even a store.
    a.active = False
    db.session.commit()
    late, _ = activate_member(
        phone="13900000032", oa_openid="o-new-32", guide_id=a.id, store_id=a.store_id,
        source="oa", consent_version="v1",
    )  # fmt: skip
    db.session.commit()
    assert _binding(late) is None
