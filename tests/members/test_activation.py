"""Activation: one member per phone, identities attached once, first touch kept."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core.audit import Actor, AuditLog, acting_as
from core.db import db
from core.errors import Conflict, ValidationError
from core.jobs import OutboxJob, enqueue, job
from core.tenancy import use_brand
from members import activation, identities, queries, signals
from members.activation.services import WELCOME_GIFTS
from members.models import (
    Member,
    MemberAttribution,
    MemberIdentity,
    MemberMerge,
    MemberTag,
    luhn_digit,
)
from members.tiers_tags import tags

CONSENT = "2026-01"


@job("default")
def welcome_gift_job(member_id: int) -> None:
    """Test job standing in for the points/coupons welcome gift."""


def _welcome(member_id: int) -> None:
    enqueue(welcome_gift_job, member_id, dedupe_key=f"welcome:{member_id}")


@pytest.fixture
def welcome_hook():
    activation.register_welcome_gift(_welcome)
    yield
    WELCOME_GIFTS.remove(_welcome)


def count(model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_activation_creates_member_with_card_store_guide_and_gift(world, welcome_hook):
    received = []

    def on_activated(sender, **kw):
        received.append((sender, kw))

    signals.member_activated.connect(on_activated)
    try:
        m, created = activation.activate_member(
            phone="+86 138-0013-8000",
            oa_openid="oOPENID000000000000000000001",
            guide_id=world.guide.id,
            source="oa",
            consent_version=CONSENT,
        )
        db.session.commit()
    finally:
        signals.member_activated.disconnect(on_activated)
    assert created
    assert m.phone == "13800138000"
    assert len(m.card_no) == 10 and m.card_no.isdigit()
    assert m.card_no[-1] == luhn_digit(m.card_no[:-1])
    # The guide's store is the member's store.
    assert (m.store_id, m.guide_id) == (world.store.id, world.guide.id)
    assert m.activated_at is not None and m.consent_version == CONSENT
    assert [t.code for t in tags.member_tags(member_id=m.id)] == ["activated"]
    assert received == [
        (
            world.brand.id,
            {
                "member_id": m.id,
                "created": True,
                "store_id": world.store.id,
                "guide_id": world.guide.id,
                "source": "oa",
            },
        )
    ]
    assert count(OutboxJob, OutboxJob.dedupe_key == f"welcome:{m.id}") == 1
    att = queries.attributions_of(member_id=m.id)
    assert [(a.kind, a.guide_id) for a in att] == [("first_touch", world.guide.id)]


def test_scan_again_is_not_duplicated_and_other_guide_is_history(world, welcome_hook):
    m1, created1 = activation.activate_member(
        phone="13800138001", guide_id=world.guide.id, source="oa", consent_version=CONSENT
    )
    m2, created2 = activation.activate_member(
        phone="13800138001", guide_id=world.guide2.id, source="oa", consent_version=CONSENT
    )
    db.session.commit()
    assert created1 and not created2 and m1.id == m2.id
    assert m2.guide_id == world.guide.id  # first touch kept
    kinds = [(a.kind, a.guide_id) for a in queries.attributions_of(member_id=m1.id)]
    assert kinds == [("first_touch", world.guide.id), ("scan", world.guide2.id)]
    assert count(Member) == 1
    assert count(OutboxJob, OutboxJob.func.like("%welcome_gift_job")) == 1
    # A scan of the member's own guide again records nothing new.
    assert activation.record_scan(member_id=m1.id, guide_id=world.guide.id) is None
    scan = activation.record_scan(member_id=m1.id, store_id=world.store2.id)
    assert scan.kind == "scan" and scan.store_id == world.store2.id


def test_a_new_member_activated_by_an_operator_is_audited_as_before(world):
    # Without an actor the new member is written by one statement; with one, the activation's
    # fields go through the ORM, whose flush writes the audit log.
    with acting_as(Actor("staff", 7, "operator")):
        m, created = activation.activate_member(
            phone="13800138077",
            oa_openid="oAUDITED00000000000000000001",
            guide_id=world.guide.id,
            source="oa",
            consent_version=CONSENT,
        )
        db.session.commit()
    assert created and m.activated_at is not None and m.guide_id == world.guide.id
    rows = (
        db.session.execute(
            select(AuditLog).where(
                AuditLog.object_type == "member", AuditLog.object_id == str(m.id)
            )
        )
        .scalars()
        .all()
    )
    assert [r.action for r in rows] == ["update"] and rows[0].after["consent_version"] == CONSENT
    assert [t.code for t in tags.member_tags(member_id=m.id)] == ["activated"]
    assert count(MemberAttribution, MemberAttribution.member_id == m.id) == 1


@pytest.mark.parametrize("phone", ["12345678901", "1380013800", "abc", "", "+1 2025550123"])
def test_invalid_phone_refused(world, phone):
    with pytest.raises(ValidationError) as exc:
        activation.activate_member(phone=phone, source="oa", consent_version=CONSENT)
    assert exc.value.field == "phone"
    assert count(Member) == 0


def test_consent_required(world):
    with pytest.raises(ValidationError):
        activation.activate_member(phone="13800138002", source="oa", consent_version=" ")


def test_identity_only_member_gets_the_phone(world):
    m0, created = identities.ensure_identity_member(
        kind="mp_openid", value="mpOPENID1", source="mp", extra={"unionid": "UNION1"}
    )
    assert created and m0.phone is None
    m, created = activation.activate_member(
        phone="13800138003", mp_openid="mpOPENID1", source="mp", consent_version=CONSENT
    )
    db.session.commit()
    assert not created and m.id == m0.id and m.phone == "13800138003"
    assert count(Member) == 1
    assert identities.find_by_identity(kind="unionid", value="UNION1").id == m.id


def test_identity_only_member_then_phone_of_another_member_merges(world):
    # A POS record with a phone, and a mini-program login that only knows the openid.
    a, _ = activation.activate_member(phone="13800138004", source="pos", consent_version=CONSENT)
    b, _ = identities.ensure_identity_member(kind="mp_openid", value="mpOPENID2", source="mp")
    tags.apply_system_tag(member_id=b.id, code="visited_store")
    db.session.commit()
    m, created = activation.activate_member(
        phone="13800138004", mp_openid="mpOPENID2", source="mp", consent_version=CONSENT
    )
    db.session.commit()
    assert not created and m.id == a.id
    merge = db.session.execute(select(MemberMerge)).scalar_one()
    assert (merge.kept_id, merge.merged_id) == (a.id, b.id)
    assert merge.counts["identities"] == 1 and merge.counts["tags"] == 1
    assert merge.counts["tag_history"] == 1
    assert db.session.get(Member, b.id).status == "merged"
    assert count(MemberIdentity, MemberIdentity.member_id == a.id) == 1
    assert {t.code for t in tags.member_tags(member_id=a.id)} == {"activated", "visited_store"}


def test_openid_of_another_phone_is_a_conflict(world):
    activation.activate_member(
        phone="13800138005", oa_openid="oX", source="oa", consent_version=CONSENT
    )
    with pytest.raises(Conflict):
        activation.activate_member(
            phone="13800138006", oa_openid="oX", source="oa", consent_version=CONSENT
        )


def test_attach_identity_rules(world):
    a, _ = activation.activate_member(phone="13800138007", source="oa", consent_version=CONSENT)
    b, _ = activation.activate_member(
        phone="13800138008", oa_openid="oB", source="oa", consent_version=CONSENT
    )
    c, _ = identities.ensure_identity_member(kind="jd", value="JD-1", source="jd")
    with pytest.raises(Conflict):
        identities.attach_identity(member_id=a.id, kind="oa_openid", value="oB")
    identities.attach_identity(member_id=a.id, kind="jd", value="JD-1")  # phone-less: merged
    assert db.session.get(Member, c.id).status == "merged"
    assert identities.find_by_identity(kind="jd", value="JD-1").id == a.id
    ident = identities.attach_identity(member_id=a.id, kind="pos", value="P-1")
    assert ident.member_id == a.id
    assert identities.attach_identity(member_id=a.id, kind="pos", value="P-1").id == ident.id
    with pytest.raises(ValidationError):
        identities.attach_identity(member_id=a.id, kind="weibo", value="x")


def _concurrently(app, n, fn):
    barrier = threading.Barrier(n)
    errors, results = [], []

    def run(i):
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(fn(i))
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                db.session.rollback()
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_twenty_concurrent_activations_make_one_member(app, world, welcome_hook):
    """Double taps and WeChat retries, mixing phone + official-account / mini-program ids."""
    bid, guide_id = world.brand.id, world.guide.id
    activated = []

    def on_activated(sender, **kw):
        activated.append(kw["member_id"])

    signals.member_activated.connect(on_activated)

    def activate(i):
        with use_brand(bid):
            kw = {}
            if i % 2 == 0:
                kw["oa_openid"] = "oCONCURRENT00000000000000001"
            if i % 3 == 0:
                kw["mp_openid"] = "mpCONCURRENT0000000000000001"
            if i % 4 == 0:
                kw["unionid"] = "uCONCURRENT00000000000000001"
            m, created = activation.activate_member(
                phone="13912345678",
                guide_id=guide_id,
                source="oa" if i % 3 else "mp",
                consent_version=CONSENT,
                **kw,
            )
            return m.id, created

    try:
        results, errors = _concurrently(app, 20, activate)
    finally:
        signals.member_activated.disconnect(on_activated)
    assert errors == []
    assert len({mid for mid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    db.session.expire_all()
    assert count(Member) == 1
    member_id = results[0][0]
    kinds = db.session.execute(
        select(MemberIdentity.kind).where(MemberIdentity.member_id == member_id)
    ).scalars()
    assert sorted(kinds) == ["mp_openid", "oa_openid", "unionid"]
    assert count(MemberAttribution) == 1
    assert count(MemberTag) == 1  # "activated", once
    assert activated == [member_id]
    assert count(OutboxJob, OutboxJob.dedupe_key == f"welcome:{member_id}") == 1


def test_twenty_concurrent_mini_program_logins_make_one_member(app, world):
    bid = world.brand.id

    def login(i):
        with use_brand(bid):
            m, created = identities.ensure_identity_member(
                kind="mp_openid", value="mpLOGIN", source="mp", extra={"unionid": "uLOGIN"}
            )
            return m.id, created

    results, errors = _concurrently(app, 20, login)
    assert errors == []
    assert len({mid for mid, _ in results}) == 1
    assert sum(c for _, c in results) == 1
    assert count(Member) == 1 and count(MemberIdentity) == 2


def test_errors_are_translated_to_chinese(app, world):
    with app.test_request_context("/"):
        with pytest.raises(ValidationError) as exc:
            activation.activate_member(phone="123", source="oa", consent_version=CONSENT)
    assert exc.value.message == "手机号码无效"
