"""Segment counts equal a count written by hand in SQL, for every condition and for
and / or / not combinations, on generated data (tests/campaigns/conftest.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from campaigns import segment_fields, segments
from core.db import db
from core.errors import ValidationError

BASE = (
    "SELECT count(*) FROM member m WHERE m.brand_id = :b AND m.status = 'active'"
    " AND m.deleted_at IS NULL AND "
)


def hand(world, where: str, **params) -> int:
    params = {"b": world.brand.id, "now": world.now, **params}
    return db.session.execute(text(BASE + where), params).scalar_one()


def ours(world, *conditions, op="and", store_id=None) -> int:
    tree = {"op": op, "items": list(conditions)}
    return segments.count(tree, store_id=store_id, now=world.now)


def days_ago(world, n: int) -> dt.datetime:
    return world.now - dt.timedelta(days=n)


def _cases(w):
    """(condition, hand-written predicate, parameters) for every field and operator."""
    t1, t2, t3 = (t.id for t in w.tags)
    s1, s2, s3, s4 = (s.id for s in w.stores)
    silver, gold = (t.id for t in w.tiers)
    g1, g2 = (g.id for g in w.guides)
    c1, c2 = (c.id for c in w.templates)
    mt = "SELECT 1 FROM member_tag x WHERE x.member_id = m.id AND x.tag_id = "
    has_id = "EXISTS (SELECT 1 FROM member_identity i WHERE i.member_id = m.id AND i.kind IN "
    bal = "COALESCE((SELECT balance FROM points_account p WHERE p.member_id = m.id), 0)"
    fact = "COALESCE((SELECT {} FROM shop_member_facts f WHERE f.member_id = m.id), 0)"
    last = "(SELECT last_purchase_at FROM shop_member_facts f WHERE f.member_id = m.id)"
    city = "m.store_id IN (SELECT id FROM store WHERE city IN ({}))"
    two_cities = "'上海', '北京'"
    oc = fact.format("order_count")

    def window(measure, channel=""):
        return (
            f"COALESCE((SELECT {measure} FROM shop_order o WHERE o.member_id = m.id"
            f" AND o.paid_at IS NOT NULL AND o.paid_at >= :since {channel}), 0)"
        )

    cpn = "EXISTS (SELECT 1 FROM coupon c WHERE c.member_id = m.id AND c.template_id = "
    return [
        # tags
        ({"field": "tag", "op": "any", "value": [t1, t3]},
         f"(EXISTS ({mt}{t1}) OR EXISTS ({mt}{t3}))", {}),
        ({"field": "tag", "op": "all", "value": [t1, t2]},
         f"EXISTS ({mt}{t1}) AND EXISTS ({mt}{t2})", {}),
        ({"field": "tag", "op": "none", "value": [t2]}, f"NOT EXISTS ({mt}{t2})", {}),
        # tier
        ({"field": "tier", "op": "in", "value": [gold]}, f"m.tier_id = {gold}", {}),
        ({"field": "tier", "op": "not_in", "value": [gold]},
         f"(m.tier_id IS NULL OR m.tier_id <> {gold})", {}),
        # home store, city, region
        ({"field": "store", "op": "in", "value": [s1, s3]}, f"m.store_id IN ({s1}, {s3})", {}),
        ({"field": "store", "op": "not_in", "value": [s1]},
         f"(m.store_id IS NULL OR m.store_id <> {s1})", {}),
        ({"field": "city", "op": "in", "value": ["上海"]}, city.format("'上海'"), {}),
        ({"field": "city", "op": "not_in", "value": ["上海", "北京"]},
         f"NOT COALESCE({city.format(two_cities)}, false)",
         {}),
        ({"field": "region", "op": "in", "value": ["华北"]},
         f"m.store_id = {s4}", {}),
        ({"field": "region", "op": "not_in", "value": ["华东"]},
         f"(m.store_id IS NULL OR m.store_id = {s4})", {}),
        # guide
        ({"field": "guide", "op": "in", "value": [g1]}, f"m.guide_id = {g1}", {}),
        ({"field": "guide", "op": "not_in", "value": [g1]},
         f"(m.guide_id IS NULL OR m.guide_id = {g2})", {}),
        ({"field": "guide", "op": "set", "value": None}, "m.guide_id IS NOT NULL", {}),
        ({"field": "guide", "op": "unset"}, "m.guide_id IS NULL", {}),
        # channel identities
        ({"field": "identity", "op": "any", "value": ["mp_openid", "pos"]},
         has_id + "('mp_openid', 'pos'))", {}),
        ({"field": "identity", "op": "none", "value": ["oa_openid"]},
         "NOT " + has_id + "('oa_openid'))", {}),
        # points balance (no account: 0 points)
        ({"field": "points_balance", "op": "gte", "value": 500}, f"{bal} >= 500", {}),
        ({"field": "points_balance", "op": "lte", "value": 100}, f"{bal} <= 100", {}),
        ({"field": "points_balance", "op": "between", "value": [0, 300]},
         f"{bal} BETWEEN 0 AND 300", {}),
        ({"field": "points_balance", "op": "between", "value": [200, 600]},
         f"{bal} BETWEEN 200 AND 600", {}),
        # card activation
        ({"field": "activated", "op": "within_days", "value": 30},
         "m.activated_at >= :since", {"since": days_ago(w, 30)}),
        ({"field": "activated", "op": "before_days", "value": 90},
         "m.activated_at < :since", {"since": days_ago(w, 90)}),
        ({"field": "activated", "op": "never"}, "m.activated_at IS NULL", {}),
        ({"field": "activated", "op": "ever"}, "m.activated_at IS NOT NULL", {}),
        ({"field": "activated", "op": "dates",
          "value": [(w.now - dt.timedelta(days=100)).astimezone(w.brand.tz).date().isoformat(),
                    (w.now - dt.timedelta(days=10)).astimezone(w.brand.tz).date().isoformat()]},
         "(m.activated_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN"
         " ((:now AT TIME ZONE 'Asia/Shanghai')::date - 100)"
         " AND ((:now AT TIME ZONE 'Asia/Shanghai')::date - 10)", {}),
        # recency, frequency, monetary (the shop's per-member facts)
        ({"field": "last_purchase", "op": "within_days", "value": 30},
         f"{last} >= :since", {"since": days_ago(w, 30)}),
        ({"field": "last_purchase", "op": "before_days", "value": 90},
         f"{last} < :since", {"since": days_ago(w, 90)}),
        ({"field": "last_purchase", "op": "never"}, f"{last} IS NULL", {}),
        ({"field": "order_count", "op": "gte", "value": 3}, oc + " >= 3", {}),
        ({"field": "order_count", "op": "lte", "value": 1}, oc + " <= 1", {}),
        ({"field": "spend", "op": "between", "value": [10_000, 30_000]},
         fact.format("spend_fen") + " BETWEEN 10000 AND 30000", {}),
        ({"field": "spend", "op": "lte", "value": 5_000},
         fact.format("spend_fen") + " <= 5000", {}),
        # orders in a window, by channel
        ({"field": "orders_window", "op": "gte", "value": 2, "days": 60},
         window("count(*)") + " >= 2", {"since": days_ago(w, 60)}),
        ({"field": "orders_window", "op": "lte", "value": 1, "days": 120, "channel": "till"},
         window("count(*)", "AND o.channel = 'till'") + " <= 1", {"since": days_ago(w, 120)}),
        ({"field": "orders_window", "op": "between", "value": [1, 2], "days": 90,
          "channel": "online"},
         window("count(*)", "AND o.channel <> 'till'") + " BETWEEN 1 AND 2",
         {"since": days_ago(w, 90)}),
        ({"field": "spend_window", "op": "gte", "value": 5_000, "days": 45},
         window("sum(o.paid_fen - o.refunded_fen)") + " >= 5000", {"since": days_ago(w, 45)}),
        ({"field": "spend_window", "op": "lte", "value": 3_000, "days": 120, "channel": "online"},
         window("sum(o.paid_fen - o.refunded_fen)", "AND o.channel <> 'till'") + " <= 3000",
         {"since": days_ago(w, 120)}),
        # coupon history
        ({"field": "coupon", "op": "received", "value": [c1]}, f"{cpn}{c1})", {}),
        ({"field": "coupon", "op": "received", "value": [c1, c2], "days": 20},
         f"EXISTS (SELECT 1 FROM coupon c WHERE c.member_id = m.id AND c.template_id IN"
         f" ({c1}, {c2}) AND c.issued_at >= :since)", {"since": days_ago(w, 20)}),
        ({"field": "coupon", "op": "redeemed", "value": [c1], "days": 10},
         f"{cpn}{c1} AND c.status = 'redeemed' AND c.redeemed_at >= :since)",
         {"since": days_ago(w, 10)}),
        ({"field": "coupon", "op": "not_received", "value": [c2]}, f"NOT {cpn}{c2})", {}),
        ({"field": "coupon", "op": "not_redeemed", "value": [c1]},
         f"NOT {cpn}{c1} AND c.status = 'redeemed')", {}),
    ]  # fmt: skip


def test_every_condition_counts_as_the_hand_written_sql(world):
    cases = _cases(world)
    fields = {c["field"] for c, _w, _p in cases}
    assert fields == set(segment_fields.FIELDS)  # every field is covered
    for condition, where, params in cases:
        expected = hand(world, where, **params)
        assert ours(world, condition) == expected, condition
        # a condition that selects nobody or everybody would prove little
        assert 0 < expected < hand(world, "true"), condition


def test_and_or_not_combinations_count_as_the_hand_written_sql(world):
    t1 = world.tags[0].id
    gold = world.tiers[1].id
    tag = {"field": "tag", "op": "any", "value": [t1]}
    tier = {"field": "tier", "op": "in", "value": [gold]}
    spend = {"field": "points_balance", "op": "gte", "value": 500}
    recent = {"field": "last_purchase", "op": "within_days", "value": 60}
    p_tag = f"EXISTS (SELECT 1 FROM member_tag x WHERE x.member_id = m.id AND x.tag_id = {t1})"
    p_tier = f"m.tier_id = {gold}"
    p_bal = "COALESCE((SELECT balance FROM points_account p WHERE p.member_id = m.id), 0) >= 500"
    p_recent = (
        "EXISTS (SELECT 1 FROM shop_member_facts f WHERE f.member_id = m.id"
        " AND f.last_purchase_at >= :since)"
    )
    since = {"since": days_ago(world, 60)}
    assert ours(world, tag, tier) == hand(world, f"{p_tag} AND {p_tier}")
    assert ours(world, tag, tier, op="or") == hand(world, f"({p_tag} OR {p_tier})")
    assert ours(world, {"op": "not", "items": [tag]}) == hand(world, f"NOT {p_tag}")
    nested = {
        "op": "or",
        "items": [
            {"op": "and", "items": [tag, spend]},
            {"op": "not", "items": [{"op": "or", "items": [tier, recent]}]},
        ],
    }
    expected = hand(world, f"(({p_tag} AND {p_bal}) OR NOT ({p_tier} OR {p_recent}))", **since)
    assert segments.count(nested, now=world.now) == expected
    assert 0 < expected < hand(world, "true")


def test_store_scope_and_cap(world):
    store = world.stores[0].id
    tag = {"field": "tag", "op": "none", "value": [world.tags[1].id]}
    expected = hand(
        world,
        f"m.store_id = {store} AND NOT EXISTS (SELECT 1 FROM member_tag x"
        f" WHERE x.member_id = m.id AND x.tag_id = {world.tags[1].id})",
    )
    assert ours(world, tag, store_id=store) == expected > 0
    # conditions cannot reach past the forced store
    other = {"field": "store", "op": "in", "value": [world.stores[1].id]}
    assert ours(world, other, store_id=store) == 0
    total = ours(world, tag)
    assert segments.count({"op": "and", "items": [tag]}, cap=10, now=world.now) == 11
    assert segments.count({"op": "and", "items": [tag]}, cap=total, now=world.now) == total


def test_member_ids_is_a_subquery_of_ids(world):
    tree = {"op": "and", "items": [{"field": "tier", "op": "in", "value": [world.tiers[0].id]}]}
    ids = set(db.session.execute(segments.member_ids(tree)).scalars())
    expected = set(
        db.session.execute(
            text(
                "SELECT id FROM member WHERE brand_id = :b AND tier_id = :t"
                " AND status = 'active' AND deleted_at IS NULL"
            ),
            {"b": world.brand.id, "t": world.tiers[0].id},
        ).scalars()
    )
    assert ids == expected and ids


@pytest.mark.parametrize(
    "tree, message",
    [
        ({"op": "and", "items": [{"field": "height", "op": "gte", "value": 1}]}, "未知"),
        ({"op": "and", "items": [{"field": "tier", "op": "gte", "value": [1]}]}, "运算"),
        ({"op": "and", "items": [{"field": "points_balance", "op": "gte", "value": "x"}]}, "值"),
        ({"op": "and", "items": [{"field": "points_balance", "op": "gte", "value": True}]}, "值"),
        (
            {"op": "and", "items": [{"field": "points_balance", "op": "between", "value": [9, 1]}]},
            "最小",
        ),
        ({"op": "and", "items": [{"field": "orders_window", "op": "gte", "value": 1}]}, "天"),
        ({"op": "and", "items": [{"field": "tag", "op": "any", "value": []}]}, "至少"),
        (
            {"op": "and", "items": [{"field": "tag", "op": "all", "value": list(range(1, 22))}]},
            "最多 20 项",
        ),
        ({"op": "and", "items": [{"field": "tag", "op": "any", "value": [99999]}]}, "不存在"),
        ({"op": "and", "items": []}, "至少"),
        ({"op": "xor", "items": [{"field": "guide", "op": "set"}]}, "格式"),
        ({"op": "not", "items": [{"field": "guide", "op": "set"}] * 2}, "一个"),
        ({"op": "and", "items": [{"field": "guide", "op": "set"}] * 31}, "30"),
        ("not json", "格式"),
        ([1, 2], "格式"),
    ],
)
def test_bad_trees_are_refused_with_a_chinese_message(brand, app, tree, message):
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        with pytest.raises(ValidationError) as err:
            segments.validate(tree)
    assert message in err.value.message


def test_deep_trees_are_refused(brand, app):
    tree: dict = {"field": "guide", "op": "set"}
    for _ in range(6):
        tree = {"op": "not", "items": [tree]}
    with app.test_request_context():
        with pytest.raises(ValidationError) as err:
            segments.validate(tree)
    assert "层" in err.value.message


def test_another_brands_ids_are_refused(brand):
    from core.tenancy import use_brand
    from tests import factories

    other = factories.brand()
    with use_brand(other.id):
        store = factories.store(other)
    with pytest.raises(ValidationError):
        segments.validate(
            {"op": "and", "items": [{"field": "store", "op": "in", "value": [store.id]}]}
        )
