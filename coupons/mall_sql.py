"""The points mall's statements (Core SQL, no ORM objects on the hot path).

The hot rows are the template's and the item's stock. Both are locked (``FOR UPDATE``, the
template first, everywhere) and checked in the statement that then changes them, and every
write of that statement is guarded by the outcome of all checks: it writes everything or
nothing, so an exchange that finds the item sold out has nothing to undo. It is the last
statement of the exchange: the hot rows stay locked for that statement and the commit only.
"""

from __future__ import annotations

from points import spending
from points.spending import driver_sql

# The item, its template, the member and whether this key was used: one read, no lock.
ITEM = driver_sql(
    "SELECT i.template_id, i.title, i.price_points, i.stock AS item_stock, i.sold,"
    " i.per_member_limit AS item_limit, i.tier_ids, i.active AS item_active,"
    " t.kind, t.active AS tpl_active, t.stock AS tpl_stock, t.issued, t.valid_days,"
    " t.valid_from, t.valid_until, t.per_member_limit, t.per_day_limit,"
    " m.status AS member_status, m.tier_id,"
    " (SELECT o.id FROM coupon_mall_order o WHERE o.brand_id = :b"
    " AND o.idempotency_key = :order_key) AS done"
    " FROM coupon_mall_item i JOIN coupon_template t ON t.id = i.template_id"
    " LEFT JOIN member m ON m.id = :m AND m.brand_id = :b"
    " WHERE i.id = :i AND i.brand_id = :b AND t.brand_id = :b"
)

# Lock and check both hot rows; take their stock only if ``{ready}`` and both checks hold.
_HOT = """
tpl_row AS (
    SELECT active AND (stock IS NULL OR issued < stock)
           AND (valid_days IS NOT NULL OR valid_until > :now) AS ok
    FROM coupon_template WHERE id = :t AND brand_id = :b
    FOR UPDATE
), item_row AS (
    SELECT active AND (stock IS NULL OR sold < stock) AS ok
    FROM coupon_mall_item WHERE id = :i AND brand_id = :b
    FOR UPDATE
), hot AS (
    SELECT COALESCE((SELECT ok FROM tpl_row), false) AS tpl_ok,
           COALESCE((SELECT ok FROM item_row), false) AS item_ok
), go AS (
    SELECT {ready} AND hot.tpl_ok AND hot.item_ok AS go FROM hot
), tpl AS (
    UPDATE coupon_template SET issued = issued + 1, updated_at = :now
    WHERE id = :t AND brand_id = :b AND (SELECT go FROM go)
    RETURNING id
), item AS (
    UPDATE coupon_mall_item SET sold = sold + 1, updated_at = :now
    WHERE id = :i AND brand_id = :b AND (SELECT go FROM go)
    RETURNING id
)"""

# The coupon, its stock ledger line and the order, after step ``{after}`` (one row or none).
_ISSUE = """
coupon AS (
    INSERT INTO coupon (brand_id, template_id, member_id, code, status, source,
        idempotency_key, issued_at, issued_day, valid_from, valid_until)
    SELECT :b, :t, :m, :code, :status, 'mall', :coupon_key, :now, :day, :vf, :vu
    FROM {after} WHERE EXISTS (SELECT 1 FROM item)
    RETURNING id
), stock AS (
    INSERT INTO coupon_stock_entry (brand_id, template_id, delta_issued, delta_stock, reason,
        idempotency_key, created_at)
    SELECT :b, :t, 1, 0, 'mall', :stock_key, :created FROM coupon
), mall_order AS (
    INSERT INTO coupon_mall_order (brand_id, item_id, member_id, points, points_entry_id,
        coupon_id, idempotency_key, created_at)
    SELECT :b, :i, :m, :p, {entry_id}, coupon.id, :order_key, :now FROM coupon, {after}
    RETURNING id, coupon_id
)"""

_RESULT = (
    " SELECT (SELECT tpl_ok FROM hot) AS tpl_ok, (SELECT item_ok FROM hot) AS item_ok,"
    " (SELECT go FROM go) AS go, (SELECT id FROM mall_order) AS order_id,"
    " (SELECT coupon_id FROM mall_order) AS coupon_id"
)


def _fill(template: str, **parts: str) -> str:
    # The parts are SQL written in this module, never data: every value is a bound parameter.
    for name, sql in parts.items():
        template = template.replace("{" + name + "}", sql)
    return template


# The whole exchange after the account lock, in one statement: the points (the lots that
# pay, the entry, the account), both stocks, the coupon, the stock line and the order.
# ``fresh`` refuses a key already used, as seen after the account lock (which serialises
# the member's exchanges, so a repeat of one still running waits for it and then sees it).
EXCHANGE = driver_sql(
    "WITH "  # noqa: S608 - composed of this module's SQL only; values are bound
    + spending.LOTS_CTES
    + """, fresh AS (
    SELECT covered.ok AS covered,
        EXISTS (SELECT 1 FROM coupon_mall_order WHERE brand_id = :b
                AND idempotency_key = :order_key) AS done,
        EXISTS (SELECT 1 FROM points_entry WHERE brand_id = :b AND idempotency_key = :key)
        OR EXISTS (SELECT 1 FROM coupon WHERE brand_id = :b
                   AND idempotency_key = :coupon_key) AS used
    FROM covered
),"""
    + _fill(_HOT, ready="(SELECT covered AND NOT done AND NOT used FROM fresh)")
    + ","
    + spending.entry_ctes(guard="EXISTS (SELECT 1 FROM item)")
    + ","
    + _fill(_ISSUE, after="entry", entry_id="entry.id")
    + _RESULT
    + ", (SELECT covered FROM fresh) AS covered, (SELECT done FROM fresh) AS done,"
    " (SELECT used FROM fresh) AS used, (SELECT id FROM entry) AS entry_id,"
    " (SELECT balance FROM account) AS balance, (SELECT count(*) FROM spent_lots) AS lots"
)

# The general path's last step, after the points were spent on their own (in a savepoint).
ISSUE = driver_sql(
    "WITH "
    + _fill(_HOT, ready="TRUE")
    + ","
    + _fill(_ISSUE, after="item", entry_id=":entry")
    + _RESULT
)
