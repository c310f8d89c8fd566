"""A brand of N members built set-based: the demo brand (``flask demo``) grown to scale.

Everything is written by ``INSERT ... SELECT`` over ``generate_series``, one transaction per
table, in time order (ids follow time, as in a live database): ~200 stores, ~2,000 staff
(a manager and nine guides per store) with their QR codes, five coupon templates, and per
member, spread over the last 720 days in the brand's time zone:

* a member with a realistic Chinese name, a unique mobile number, a card number computed by
  ``members.models.card_no_sql`` (as the importer does), a store, a guide for 40%, a tier,
  an official-account identity for the 70% who activated the card, one tag (with its
  tag-history row);
* a points account and ~3.2 ledger entries (a welcome gift, two purchases, a spend for 20%)
  with a lot per earning: entries' deltas sum to the account's totals, the balance is the
  sum of the released lots' remaining points, ``pending`` that of the lots of the last
  ``pending_days``; ``local_day`` is the brand-local date; lots expire after the brand's
  expiry months (set to 24 here so that no lot of the 720 days is overdue);
* one coupon from a bulk issue batch (the templates' ``issued``, the stock ledger and the
  batches agree with the coupons), 20% of them redeemed at a store with a redemption row,
  the unredeemed ones past their validity marked expired;
* one audit-log row per ten members (phone views, points adjustments, member edits).

Ids are reserved from each table's sequence up front (``setval``) and computed from row
numbers, so that one statement can write rows that point at each other (entry -> account,
lot -> entry, coupon -> redemption). ``check`` verifies the invariants afterwards.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from sqlalchemy import text

from members.models import card_no_sql

SPAN_DAYS = 720
EXPIRY_MONTHS = 24
NEW_STORES = 197
STAFF_PER_STORE = 10  # a manager and nine guides
GUIDES_PER_STORE = STAFF_PER_STORE - 1
SPENDERS = 5  # one member in SPENDERS spends points
REDEEMED = 5  # one coupon in REDEEMED is redeemed
AUDIT_EVERY = 10  # one audit row per AUDIT_EVERY members

SURNAMES = (
    "王王王李李李张张张刘刘陈陈杨杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
    "袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国晓婷雪琳欣怡子涵梓轩浩宇"
    "思雨佳琪欣妍梦瑶雅晨阳博文嘉俊宏志海燕丹凤颖慧佩诗晴宁远航一鸣泽楷昊然依诺若汐安琪沐辰"
)
CITIES = (
    ("上海", "华东"),
    ("杭州", "华东"),
    ("南京", "华东"),
    ("苏州", "华东"),
    ("北京", "华北"),
    ("天津", "华北"),
    ("广州", "华南"),
    ("深圳", "华南"),
    ("成都", "西南"),
    ("重庆", "西南"),
    ("武汉", "华中"),
    ("西安", "西北"),
)
# Mobile prefixes of the new members (the demo's members and staff use 138/139).
PHONE_PREFIXES = ("135", "136", "137", "150", "151", "152", "157", "158", "159", "182",
                  "183", "187", "188", "198")  # fmt: skip
TEMPLATES = (
    # name, kind, value_fen, threshold_fen, percent_off, cap_fen, gift_name, valid_days
    ("满100减20", "cash", 2000, 10000, 0, 0, "", 30),
    ("会员88折券", "percent", 0, 0, 12, 5000, "", 30),
    ("生日礼盒兑换券", "gift", 0, 0, 0, 0, "定制礼盒", 60),
    ("满300减50", "cash", 5000, 30000, 0, 0, "", 90),
    ("新品体验券", "cash", 1000, 0, 0, 0, "", 14),
)


def _h(seed: int, col: str = "g") -> str:
    """A pseudo-random non-negative bigint of ``col``, independent per ``seed``."""
    return f"abs(hashint8extended({col}::bigint, {seed}))"


def _pick(param: str, expr: str) -> str:
    """One character of the text parameter ``param`` chosen by ``expr``."""
    return (
        f"substr(CAST(:{param} AS text), (1 + ({expr}) % length(CAST(:{param} AS text)))::int, 1)"
    )


def _reserve(conn, table: str, n: int) -> int:
    """Reserve ``n`` ids of ``table``'s sequence; returns the first."""
    seq = conn.execute(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")).scalar_one()
    first = conn.execute(text("SELECT nextval(:s)"), {"s": seq}).scalar_one()
    if n > 1:
        conn.execute(text("SELECT setval(:s, :v)"), {"s": seq, "v": first + n - 1})
    return first


# A table's plain indexes, foreign keys and unique constraints, dropped for a load and made
# again after it in the same transaction (as pg_restore does): one sorted index build and
# one validating join instead of an index insert and a trigger call per row. Primary keys
# and the unique constraints other tables' keys reference stay.
PLAIN_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary AND NOT i.indisunique
ORDER BY c.relname
"""
FOREIGN_KEYS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY conname
"""
# Unique constraints no foreign key depends on: checked again when they are added back.
FREE_UNIQUES = """
SELECT u.conname, pg_get_constraintdef(u.oid) FROM pg_constraint u
WHERE u.conrelid = CAST(:t AS regclass) AND u.contype = 'u' AND NOT EXISTS (
    SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = u.conindid)
ORDER BY u.conname
"""


SCHEMA = """
SELECT string_agg(name, ',' ORDER BY name) FROM (
    SELECT indexrelid::regclass::text || ':' || pg_get_indexdef(indexrelid) AS name
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n
      ON n.oid = c.relnamespace WHERE n.nspname = 'public'
    UNION ALL
    SELECT conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace) s
"""


def _load(conn, table: str, sql: str, params: dict) -> None:
    """Run the INSERT ``sql`` into ``table`` with its plain indexes and foreign keys set aside."""
    indexes = conn.execute(text(PLAIN_INDEXES), {"t": table}).all()
    keys = conn.execute(text(FOREIGN_KEYS), {"t": table}).all()
    uniques = conn.execute(text(FREE_UNIQUES), {"t": table}).all()
    for name, _ in keys + uniques:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    conn.execute(text(sql), params)
    for _, definition in indexes:
        conn.execute(text(definition))
    for name, definition in uniques + keys:
        conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))


SESSION = (
    "SET synchronous_commit = off",
    "SET work_mem = '256MB'",
    "SET maintenance_work_mem = '512MB'",
    "SET jit = off",
)

STORES = """
INSERT INTO store (brand_id, code, name, city, region, address, active, created_at, updated_at)
SELECT :b, 'SC' || lpad(i::text, 3, '0'), c.city || '第' || i || '号店', c.city, c.region,
       c.city || '市中山路' || i || '号', true,
       :now - interval '900 days' + i * interval '3 days', :now
FROM generate_series(1, :stores) i
CROSS JOIN LATERAL (SELECT (CAST(:cities AS text[]))[1 + i % :ncities] AS city,
                           (CAST(:regions AS text[]))[1 + i % :ncities] AS region) c
ORDER BY i
"""
STAFF = """
INSERT INTO staff (brand_id, name, phone, role, store_id, password_hash, active, created_at,
                   updated_at)
SELECT :b,
       {pick_s1} || {pick_g1} || {pick_g2},
       '186' || lpad((s.rn * 10 + j)::text, 8, '0'),
       CASE WHEN j = 0 THEN 'store_manager' ELSE 'guide' END, s.id, :pw, true,
       s.created_at + j * interval '1 day', :now
FROM (SELECT id, created_at, row_number() OVER (ORDER BY id) AS rn
      FROM store WHERE brand_id = :b AND code LIKE 'SC%') s
CROSS JOIN generate_series(0, :per_store - 1) j
ORDER BY s.id, j
""".format(
    pick_s1=_pick("surnames", "s.rn * 10 + j"),
    pick_g1=_pick("given", "s.rn * 7 + j * 3"),
    pick_g2=_pick("given", "s.rn * 13 + j * 11"),
)
QRCODES = """
INSERT INTO member_qr_code (brand_id, kind, store_id, staff_id, scene, ticket, url, created_at)
SELECT :b, kind, store_id, staff_id, scene, 'scale-' || scene,
       'http://weixin.qq.com/q/scale-' || replace(scene, ':', '-'), created_at
FROM (
    SELECT 'store' AS kind, id AS store_id, NULL::bigint AS staff_id, 's:' || code AS scene,
           created_at
    FROM store WHERE brand_id = :b AND code LIKE 'SC%'
    UNION ALL
    SELECT 'guide', store_id, id, 'g:' || id, created_at
    FROM staff WHERE brand_id = :b AND role = 'guide' AND phone LIKE '186%'
) q ORDER BY created_at
"""
TEMPLATE = """
INSERT INTO coupon_template (brand_id, name, kind, description, value_fen, threshold_fen,
    percent_off, cap_fen, gift_name, valid_days, store_ids, categories, product_ids, stock,
    issued, per_member_limit, per_day_limit, stackable, shareable, active, created_at,
    updated_at)
VALUES (:b, :name, :kind, '', :value_fen, :threshold_fen, :percent_off, :cap_fen, :gift_name,
        :valid_days, '[]', '[]', '[]', NULL, 0, 0, 0, false, true, true,
        :now - interval '730 days', :now)
RETURNING id
"""

# The plan: one row per new member with every figure the other tables derive from it.
PLAN = """
CREATE UNLOGGED TABLE scale_plan AS
SELECT g, :mbase + g - 1 AS member_id, :abase + g - 1 AS account_id, c AS created_at,
       (:stores)[1 + {h1} % :nstores] AS store_id,
       1 + {h1} % :nstores AS store_no,
       {h2} % 10 < 4 AS guided, {h2} AS h2,
       {h3} % 10 < 7 AS activated,
       20 + {h4} % 480 AS e2, c + (:now - c) * (0.01 + ({h5} % 490) / 1000.0)::float8 AS t2,
       10 + {h6} % 300 AS e3, c + (:now - c) * (0.5 + ({h7} % 499) / 1000.0)::float8 AS t3,
       g % :spenders = 0 AS spends, c + (:now - c) * 0.3::float8 AS ts,
       1 + {h8} % :ntpl AS tpl_no,
       c + (:now - c) * (({h9} % 1000) / 1000.0)::float8 AS issued_at,
       {h10} % :redeemed = 0 AS redeemed, ({h11} % 1000) / 1000.0 AS redeem_f,
       {h12} AS h12
FROM (SELECT g, :now - (interval '1 day' * :span) * ((:n - g + 0.5) / :n)::float8 AS c
      FROM generate_series(CAST(1 AS bigint), :n) g) s
"""
PLAN = PLAN.format(**{f"h{i}": _h(i) for i in range(1, 13)})
PLAN_COUPON = """
CREATE UNLOGGED TABLE scale_coupon AS
SELECT p.member_id, p.store_id, p.g, (:tpls)[p.tpl_no] AS template_id, p.tpl_no, p.issued_at,
       (p.issued_at AT TIME ZONE :tz)::date AS issued_day,
       (((p.issued_at AT TIME ZONE :tz)::date + (:tpl_days)[p.tpl_no])::timestamp
            AT TIME ZONE :tz)
           AS valid_until,
       p.redeemed, p.redeem_f
FROM scale_plan p
"""
COUPON_IDS = """
CREATE UNLOGGED TABLE scale_coupon_ids AS
SELECT c.*, :cbase + row_number() OVER (ORDER BY c.issued_at, c.member_id) - 1 AS coupon_id,
       CASE WHEN c.redeemed
            THEN c.issued_at + (LEAST(c.valid_until, :now) - c.issued_at) * c.redeem_f::float8
       END AS redeemed_at
FROM scale_coupon c
"""
REDEMPTION_IDS = """
CREATE UNLOGGED TABLE scale_redemption AS
SELECT coupon_id, :rbase + row_number() OVER (ORDER BY redeemed_at, coupon_id) - 1 AS id
FROM scale_coupon_ids WHERE redeemed
"""

MEMBERS = """
INSERT INTO member (id, brand_id, phone, card_no, name, gender, birthday, store_id, guide_id,
    source, status, tier_id, tier_since, activated_at, consent_version, consented_at,
    created_at, updated_at)
SELECT p.member_id, :b,
       (CAST(:prefixes AS text[]))[1 + p.g % :nprefixes]
         || lpad((((p.g / :nprefixes) * 7919 + (p.g % :nprefixes) * 9973331 + 12345)
                  % 100000000)::text, 8, '0'),
       {card_no},
       {pick_s} || {pick_g} || CASE WHEN {n3} % 3 > 0 THEN {pick_g2} ELSE '' END,
       (ARRAY['f','f','f','f','m','m','m',''])[1 + {n5} % 8],
       CASE WHEN {n6} % 10 < 6 THEN DATE '1965-01-01' + ({n6} % 14000)::int END,
       p.store_id,
       CASE WHEN p.guided THEN (:guides)[(p.store_no - 1) * :gps + 1 + p.h2 % :gps] END,
       (ARRAY['oa','oa','oa','card','card','mp','pos','import'])[1 + {n7} % 8], 'active',
       CASE WHEN {n8} % 100 < 80 THEN :tier0 WHEN {n8} % 100 < 95 THEN :tier1 ELSE :tier2 END,
       p.created_at,
       CASE WHEN p.activated THEN p.created_at + interval '2 minutes' END,
       CASE WHEN p.activated THEN '2026-01' END,
       CASE WHEN p.activated THEN p.created_at + interval '2 minutes' END,
       p.created_at, p.created_at
FROM scale_plan p ORDER BY p.member_id
"""
_N = {f"n{i}": _h(100 + i, "p.g") for i in range(1, 9)}
MEMBERS = MEMBERS.replace("{card_no}", card_no_sql("p.member_id")).format(
    pick_s=_pick("surnames", _N["n1"]),
    pick_g=_pick("given", _N["n2"]),
    pick_g2=_pick("given", _N["n4"]),
    **_N,
)
IDENTITIES = """
INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)
SELECT :b, member_id, 'oa_openid', 'oScale' || lpad(member_id::text, 22, '0'),
       created_at + interval '2 minutes'
FROM scale_plan WHERE activated ORDER BY member_id
"""
TAGS = """
INSERT INTO member_tag (brand_id, member_id, tag_id, source, staff_id, created_at)
SELECT :b, p.member_id, (:tags)[1 + p.h12 % :ntags],
       CASE WHEN p.guided THEN 'staff' ELSE 'system' END,
       CASE WHEN p.guided THEN (:guides)[(p.store_no - 1) * :gps + 1 + p.h2 % :gps] END,
       p.t2
FROM scale_plan p ORDER BY p.t2
"""
TAG_HISTORY = """
INSERT INTO tag_history (brand_id, member_id, tag_id, action, source, staff_id, reason,
                         created_at)
SELECT :b, member_id, tag_id, 'added', source, staff_id, '', created_at
FROM member_tag WHERE brand_id = :b AND member_id >= :mbase ORDER BY created_at
"""

ACCOUNTS = """
INSERT INTO points_account (id, brand_id, member_id, balance, pending, debt, lifetime_earned,
    lifetime_spent, lifetime_expired, last_entry_id, synced_entry_id, updated_at, created_at)
SELECT p.account_id, :b, p.member_id,
       (CASE WHEN p.spends THEN 0 ELSE :welcome END)
         + (CASE WHEN p.t2 > :pending_since THEN 0 ELSE p.e2 END)
         + (CASE WHEN p.t3 > :pending_since THEN 0 ELSE p.e3 END),
       (CASE WHEN p.t2 > :pending_since THEN p.e2 ELSE 0 END)
         + (CASE WHEN p.t3 > :pending_since THEN p.e3 ELSE 0 END),
       0, :welcome + p.e2 + p.e3, CASE WHEN p.spends THEN :welcome ELSE 0 END, 0,
       e.last_id, e.last_id, p.t3, p.created_at
FROM scale_plan p JOIN (SELECT account_id, max(id) AS last_id FROM scale_entry
                        GROUP BY account_id) e ON e.account_id = p.account_id
ORDER BY p.account_id
"""
# Ledger lines of the plan, in time order: welcome, two purchases (pending within the last
# pending_days), and for a fifth of the members a spend that empties the welcome lot (the
# lot of earliest expiry, as the spend path takes them).
ENTRIES_PLAN = """
CREATE UNLOGGED TABLE scale_entry AS
SELECT :ebase + row_number() OVER (ORDER BY x.at, p.member_id, x.k) - 1 AS id,
       p.account_id, p.member_id, p.store_id, x.k, x.kind, x.points, x.at,
       x.kind = 'earn' AND x.at > :pending_since AS pending,
       CASE WHEN x.k = 1 AND p.spends THEN 0 ELSE x.points END AS lot_remaining
FROM scale_plan p
CROSS JOIN LATERAL (VALUES (1, 'welcome', :welcome, p.created_at),
                           (2, 'earn', p.e2, p.t2),
                           (3, 'earn', p.e3, p.t3),
                           (4, 'spend', -:welcome, p.ts)) AS x(k, kind, points, at)
WHERE x.k < 4 OR p.spends
"""
ENTRIES = """
INSERT INTO points_entry (id, brand_id, account_id, member_id, kind, idempotency_key, points,
    delta_balance, delta_pending, delta_debt, reason, amount_fen, store_id, occurred_at,
    local_day, created_at)
SELECT e.id, :b, e.account_id, e.member_id, e.kind,
       CASE e.kind WHEN 'welcome' THEN 'welcome:' || e.member_id
                   WHEN 'earn' THEN 'pos:scale:' || e.member_id || ':' || e.k
                   ELSE 'mall:scale:' || e.member_id END,
       e.points,
       CASE WHEN e.pending THEN 0 ELSE e.points END,
       CASE WHEN e.pending THEN e.points ELSE 0 END, 0,
       CASE e.kind WHEN 'welcome' THEN 'welcome' WHEN 'earn' THEN 'purchase' ELSE 'mall' END,
       CASE WHEN e.kind = 'earn' THEN e.points * 100 END,
       CASE WHEN e.kind = 'earn' THEN e.store_id END,
       e.at, (e.at AT TIME ZONE :tz)::date, e.at
FROM scale_entry e ORDER BY e.id
"""
LOTS = """
INSERT INTO points_lot (brand_id, account_id, entry_id, amount, remaining, released, earned_at,
    available_at, expires_at)
SELECT :b, e.account_id, e.id, e.points, e.lot_remaining, NOT e.pending, e.at,
       CASE WHEN e.pending THEN e.at + interval '1 day' * :pending_days ELSE e.at END,
       ((e.at AT TIME ZONE :tz) + interval '1 month' * :expiry_months) AT TIME ZONE :tz
FROM scale_entry e WHERE e.kind IN ('welcome', 'earn') ORDER BY e.id
"""

BATCHES = """
INSERT INTO coupon_issue_batch (brand_id, template_id, target, status, requested, issued,
    message, idempotency_key, created_at, finished_at)
SELECT :b, template_id, '{"kind": "all"}', 'done', count(*), count(*), '',
       'scale:' || template_id, min(issued_at), max(issued_at)
FROM scale_coupon GROUP BY template_id ORDER BY template_id
RETURNING template_id, id
"""
STOCK = """
INSERT INTO coupon_stock_entry (brand_id, template_id, delta_issued, delta_stock, reason,
    idempotency_key, created_at)
SELECT :b, template_id, count(*), 0, 'bulk', 'bulk:scale:' || template_id, max(issued_at)
FROM scale_coupon GROUP BY template_id
"""
ISSUED = """
UPDATE coupon_template t SET issued = t.issued + c.n
FROM (SELECT template_id, count(*) AS n FROM scale_coupon GROUP BY template_id) c
WHERE t.id = c.template_id
"""
COUPONS = """
INSERT INTO coupon (id, brand_id, template_id, member_id, code, status, source,
    idempotency_key, issued_at, issued_day, valid_from, valid_until, batch_id, redeemed_at,
    redemption_id, expired_at)
SELECT c.coupon_id, :b, c.template_id, c.member_id,
       upper(lpad(to_hex((c.coupon_id * 2654435761) % 1099511627776), 10, '0')),
       CASE WHEN c.redeemed THEN 'redeemed' WHEN c.valid_until <= :now THEN 'expired'
            ELSE 'available' END,
       'bulk', 'scale:' || c.template_id || ':' || c.member_id, c.issued_at, c.issued_day,
       c.issued_at, c.valid_until, (:batches)[c.tpl_no], c.redeemed_at, r.id,
       CASE WHEN NOT c.redeemed AND c.valid_until <= :now THEN c.valid_until END
FROM scale_coupon_ids c LEFT JOIN scale_redemption r ON r.coupon_id = c.coupon_id
ORDER BY c.coupon_id
"""
REDEMPTIONS = """
INSERT INTO coupon_redemption (id, brand_id, coupon_id, template_id, member_id, store_id,
    staff_id, channel, order_id, order_amount_fen, discount_fen, idempotency_key, status,
    reverse_reason, created_at)
SELECT r.id, :b, c.coupon_id, c.template_id, c.member_id, c.store_id,
       CASE WHEN c.g % 2 = 0 THEN (:guides)[1 + c.g % array_length(:guides, 1)] END,
       CASE WHEN c.g % 2 = 0 THEN 'staff' ELSE 'pos' END,
       'SO' || c.coupon_id, 5000 + (c.g * 7919) % 95000 + (:thresholds)[c.tpl_no],
       (:discounts)[c.tpl_no], 'redeem:scale:' || c.coupon_id, 'done', '', c.redeemed_at
FROM scale_redemption r JOIN scale_coupon_ids c ON c.coupon_id = r.coupon_id
ORDER BY r.id
"""
AUDIT = """
INSERT INTO audit_log (brand_id, actor_kind, actor_id, actor_label, action, object_type,
    object_id, before, after, ip, created_at)
SELECT :b, 'staff', :admin, :admin_label, a.action, 'member', p.member_id::text,
       CASE WHEN a.action = 'update' THEN json_build_object('tier_id', :tier0) END,
       CASE a.action
            WHEN 'view_phone' THEN json_build_object('card_no', 'scale')
            WHEN 'points_adjust' THEN json_build_object('points', 50, 'reason', '补录积分')
            ELSE json_build_object('tier_id', :tier1) END,
       '10.0.' || (p.g % 250) || '.' || (p.g % 200 + 1),
       p.created_at + (:now - p.created_at) * 0.7::float8
FROM scale_plan p
CROSS JOIN LATERAL (SELECT (ARRAY['view_phone', 'points_adjust', 'update'])[1 + p.g % 3]
                    AS action) a
WHERE p.g % :audit_every = 0
ORDER BY 11
"""
DROP_PLAN = (
    "DROP TABLE IF EXISTS scale_plan, scale_entry, scale_coupon, scale_coupon_ids, scale_redemption"
)
TABLES = (
    "store", "staff", "member_qr_code", "member", "member_identity", "member_tag",
    "tag_history", "points_account", "points_entry", "points_lot", "coupon_template",
    "coupon_issue_batch", "coupon_stock_entry", "coupon", "coupon_redemption", "audit_log",
)  # fmt: skip


def _brand(conn, slug: str) -> dict:
    row = conn.execute(text("SELECT id, timezone FROM brand WHERE slug = :s"), {"s": slug}).one()
    b = row.id
    one = lambda sql: conn.execute(text(sql), {"b": b}).scalar_one()  # noqa: E731
    many = lambda sql: list(conn.execute(text(sql), {"b": b}).scalars())  # noqa: E731
    return {
        "id": b,
        "tz": row.timezone,
        "tiers": many("SELECT id FROM tier_level WHERE brand_id = :b ORDER BY rank"),
        "tags": many("SELECT id FROM tag_definition WHERE brand_id = :b ORDER BY id"),
        "admin": one(
            "SELECT id FROM staff WHERE brand_id = :b AND role = 'brand_admin' ORDER BY id LIMIT 1"
        ),
        "pw": one("SELECT password_hash FROM staff WHERE brand_id = :b ORDER BY id LIMIT 1"),
        "pending_days": one("SELECT pending_days FROM points_settings WHERE brand_id = :b"),
        "welcome": one("SELECT welcome_points FROM points_settings WHERE brand_id = :b") or 100,
    }


def build(engine, *, slug: str, members: int, now, log: Callable[[str], None]) -> dict:
    """Grow brand ``slug`` (the demo brand) by ``members`` members; returns seconds per step."""
    timings: dict[str, float] = {}

    def step(name: str, work: Callable) -> object:
        started = time.perf_counter()
        with engine.begin() as conn:
            for s in SESSION:
                conn.execute(text(s))
            result = work(conn)
        timings[name] = time.perf_counter() - started
        log(f"    {name}: {timings[name]:.1f} s")
        return result

    with engine.begin() as conn:
        conn.execute(text(DROP_PLAN))
        brand = _brand(conn, slug)
        conn.execute(
            text("UPDATE points_settings SET expiry_months = :m WHERE brand_id = :b"),
            {"m": EXPIRY_MONTHS, "b": brand["id"]},
        )
        schema = conn.execute(text(SCHEMA)).scalar_one()
    b, n = brand["id"], members
    base = {"b": b, "now": now, "tz": brand["tz"], "n": n, "span": SPAN_DAYS}

    def stores_and_staff(conn):
        conn.execute(
            text(STORES),
            base
            | {
                "stores": NEW_STORES,
                "cities": [c for c, _ in CITIES],
                "regions": [r for _, r in CITIES],
                "ncities": len(CITIES),
            },
        )
        names = {"surnames": SURNAMES, "given": GIVEN, "pw": brand["pw"]}
        conn.execute(text(STAFF), base | names | {"per_store": STAFF_PER_STORE})
        conn.execute(text(QRCODES), base)

    step("stores, staff, QR codes", stores_and_staff)

    def templates(conn):
        ids = []
        for name, kind, value, threshold, pct, cap, gift, days in TEMPLATES:
            ids.append(
                conn.execute(
                    text(TEMPLATE),
                    base
                    | {
                        "name": name,
                        "kind": kind,
                        "value_fen": value,
                        "threshold_fen": threshold,
                        "percent_off": pct,
                        "cap_fen": cap,
                        "gift_name": gift,
                        "valid_days": days,
                    },
                ).scalar_one()
            )
        stores = list(
            conn.execute(
                text("SELECT id FROM store WHERE brand_id = :b AND code LIKE 'SC%' ORDER BY id"),
                base,
            ).scalars()
        )
        guides = list(
            conn.execute(
                text(
                    "SELECT g.id FROM staff g JOIN store s ON s.id = g.store_id"
                    " WHERE g.brand_id = :b AND g.role = 'guide' AND s.code LIKE 'SC%'"
                    " ORDER BY s.id, g.id"
                ),
                base,
            ).scalars()
        )
        return ids, stores, guides

    tpls, stores, guides = step("coupon templates", templates)
    assert len(guides) == len(stores) * GUIDES_PER_STORE, (len(guides), len(stores))
    tpl_days = [t[-1] for t in TEMPLATES]
    pending_since = now - dt.timedelta(days=brand["pending_days"])
    common = base | {
        "stores": stores,
        "nstores": len(stores),
        "guides": guides,
        "gps": GUIDES_PER_STORE,
        "tags": brand["tags"],
        "ntags": len(brand["tags"]),
        "tier0": brand["tiers"][0],
        "tier1": brand["tiers"][1],
        "tier2": brand["tiers"][2],
        "surnames": SURNAMES,
        "given": GIVEN,
        "prefixes": list(PHONE_PREFIXES),
        "nprefixes": len(PHONE_PREFIXES),
        "welcome": brand["welcome"],
        "pending_since": pending_since,
        "pending_days": brand["pending_days"],
        "expiry_months": EXPIRY_MONTHS,
        "tpls": tpls,
        "ntpl": len(tpls),
        "tpl_days": tpl_days,
        "spenders": SPENDERS,
        "redeemed": REDEEMED,
        "audit_every": AUDIT_EVERY,
        "admin": brand["admin"],
        "admin_label": "品牌管理员 (13800000000)",
        "thresholds": [t[3] for t in TEMPLATES],
        "discounts": [t[2] if t[1] == "cash" else 1000 for t in TEMPLATES],
    }

    def plan(conn):
        common["mbase"] = _reserve(conn, "member", n)
        common["abase"] = _reserve(conn, "points_account", n)
        conn.execute(text(PLAN), common)
        conn.execute(text(PLAN_COUPON), common)
        common["ebase"] = _reserve(conn, "points_entry", n * 4)
        conn.execute(text(ENTRIES_PLAN), common)
        coupons = conn.execute(text("SELECT count(*) FROM scale_coupon")).scalar_one()
        common["cbase"] = _reserve(conn, "coupon", coupons)
        conn.execute(text(COUPON_IDS), common)
        redeemed = conn.execute(text("SELECT count(*) FROM scale_coupon WHERE redeemed")).scalar()
        common["rbase"] = _reserve(conn, "coupon_redemption", max(redeemed, 1))
        conn.execute(text(REDEMPTION_IDS), common)
        for t in ("scale_plan", "scale_entry", "scale_coupon", "scale_coupon_ids"):
            conn.execute(text(f"ANALYZE {t}"))

    step("plan (scratch tables)", plan)
    step("member", lambda c: _load(c, "member", MEMBERS, common))
    step("member_identity", lambda c: _load(c, "member_identity", IDENTITIES, common))
    step("member_tag", lambda c: _load(c, "member_tag", TAGS, common))
    step("tag_history", lambda c: _load(c, "tag_history", TAG_HISTORY, common))
    step("points_account", lambda c: _load(c, "points_account", ACCOUNTS, common))
    step("points_entry", lambda c: _load(c, "points_entry", ENTRIES, common))
    step("points_lot", lambda c: _load(c, "points_lot", LOTS, common))

    def batches(conn):
        by_tpl = dict(conn.execute(text(BATCHES), common).all())
        common["batches"] = [by_tpl.get(t) for t in tpls]
        conn.execute(text(STOCK), common)
        conn.execute(text(ISSUED), common)

    step("coupon batches, stock ledger, issued", batches)
    step("coupon", lambda c: _load(c, "coupon", COUPONS, common))
    step("coupon_redemption", lambda c: _load(c, "coupon_redemption", REDEMPTIONS, common))
    step("audit_log", lambda c: _load(c, "audit_log", AUDIT, common))
    step("drop scratch tables", lambda c: c.execute(text(DROP_PLAN)))

    def vacuum(_conn):
        with engine.connect() as c:
            c = c.execution_options(isolation_level="AUTOCOMMIT")
            for t in TABLES:
                c.execute(text(f"VACUUM ANALYZE {t}"))

    step("VACUUM ANALYZE", vacuum)
    with engine.connect() as conn:
        if conn.execute(text(SCHEMA)).scalar_one() != schema:
            raise RuntimeError("the indexes or constraints differ from the schema's after loading")
    return {"timings": timings, "brand_id": b}


CHECKS = {
    "accounts whose balance is not the sum of their released lots": """
        SELECT count(*) FROM points_account a LEFT JOIN (
            SELECT account_id, sum(remaining) FILTER (WHERE released) AS bal,
                   sum(remaining) FILTER (WHERE NOT released) AS pend
            FROM points_lot WHERE brand_id = :b GROUP BY account_id) l ON l.account_id = a.id
        WHERE a.brand_id = :b
          AND (a.balance <> coalesce(l.bal, 0) OR a.pending <> coalesce(l.pend, 0))""",
    "accounts whose totals are not the sums of their entries": """
        SELECT count(*) FROM points_account a LEFT JOIN (
            SELECT account_id, sum(delta_balance) AS b, sum(delta_pending) AS p,
                   sum(delta_debt) AS d, max(id) AS last
            FROM points_entry WHERE brand_id = :b GROUP BY account_id) e
          ON e.account_id = a.id
        WHERE a.brand_id = :b AND (a.balance <> coalesce(e.b, 0) OR a.pending <> coalesce(e.p, 0)
              OR a.debt <> coalesce(e.d, 0) OR a.last_entry_id <> coalesce(e.last, 0))""",
    "entries whose local_day is not their brand-local date": """
        SELECT count(*) FROM points_entry e JOIN brand b ON b.id = e.brand_id
        WHERE e.brand_id = :b AND e.local_day <> (e.occurred_at AT TIME ZONE b.timezone)::date""",
    "templates whose issued count differs from their coupons": """
        SELECT count(*) FROM coupon_template t LEFT JOIN (
            SELECT template_id, count(*) AS n FROM coupon WHERE brand_id = :b
            GROUP BY template_id) c ON c.template_id = t.id
        WHERE t.brand_id = :b AND t.issued <> coalesce(c.n, 0)""",
    "redeemed coupons without their redemption row": """
        SELECT count(*) FROM coupon c LEFT JOIN coupon_redemption r ON r.id = c.redemption_id
        WHERE c.brand_id = :b AND c.status = 'redeemed'
          AND (r.id IS NULL OR r.coupon_id <> c.id)""",
}
COUNTS = (
    "member", "staff", "store", "points_entry", "points_lot", "coupon", "coupon_redemption",
    "audit_log", "member_tag",
)  # fmt: skip


def check(engine, brand_id: int) -> dict:
    """The invariants (each a count of offending rows, 0 when consistent) and row counts."""
    with engine.connect() as conn:
        conn.execute(text("SET work_mem = '256MB'"))
        bad = {name: conn.execute(text(sql), {"b": brand_id}).scalar_one()
               for name, sql in CHECKS.items()}  # fmt: skip
        counts = {
            t: conn.execute(
                text(f"SELECT count(*) FROM {t} WHERE brand_id = :b"),  # noqa: S608 - constants
                {"b": brand_id},
            ).scalar_one()
            for t in COUNTS
        }
    return {"bad": bad, "counts": counts}
