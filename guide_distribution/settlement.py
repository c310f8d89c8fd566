"""Settlement: frozen commission whose after-sale window has passed (``settle_due_at``) and
whose order has no after-sale request open becomes withdrawable.

Set-based, in batches keyed by line id: one statement picks a batch of due lines, moves
them to settled by primary key and sums them per guide; the guides' accounts are then locked
in guide order and changed by one UPDATE (debt recovered first), with one ledger entry per
guide and batch. A line moves only from frozen, and the UPDATE rechecks that on the row's
latest version when it had to wait for another transaction (a second run at the same time, a
refund reversing the line): each line is settled once however many runs overlap, and a
refund that commits first is settled net of what it took back. Lines are locked in id order
and accounts only afterwards, in guide order, as every other path does, so runs and refunds
never wait on each other in a circle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text

from core.db import db, utcnow
from core.tenancy import require_brand_id

BATCH = 20_000

_MOVE = text(
    """
WITH cand AS (
    SELECT id FROM guide_commission_line
    WHERE brand_id = :brand AND state = 'frozen' AND id > :after AND settle_due_at <= :now
    ORDER BY id
    LIMIT :n
), moved AS (
    UPDATE guide_commission_line l SET state = 'settled', settled_at = :now
    WHERE l.id = ANY(ARRAY(SELECT id FROM cand))  -- by primary key, never a scan of the table
      AND l.state = 'frozen'  -- rechecked on the row's latest version after any wait
      AND NOT EXISTS (
          SELECT 1 FROM shop_after_sale s
          WHERE s.order_id = l.order_id AND s.brand_id = l.brand_id
            AND s.status IN ('requested', 'approved', 'refunding')
      )
    RETURNING l.id, l.guide_id, l.amount_fen - l.reversed_fen AS net
)
SELECT guide_id, sum(net)::bigint AS net, count(*) AS n, min(id) AS first,
       (SELECT max(id) FROM cand) AS last
FROM moved GROUP BY guide_id
UNION ALL
SELECT NULL, 0, 0, NULL, (SELECT max(id) FROM cand)
ORDER BY 1 NULLS LAST
"""
)

_ACCOUNTS = text(
    """
WITH s AS (
    SELECT * FROM unnest(CAST(:guides AS bigint[]), CAST(:nets AS bigint[])) AS s(guide_id, net)
), locked AS (
    SELECT a.id, a.owed_fen, s.net, s.guide_id FROM guide_account a
    JOIN s ON s.guide_id = a.guide_id
    WHERE a.brand_id = :brand
    ORDER BY a.guide_id
    FOR UPDATE OF a
)
UPDATE guide_account a SET
    frozen_fen = a.frozen_fen - l.net,
    owed_fen = a.owed_fen - LEAST(l.net, l.owed_fen),
    settled_fen = a.settled_fen + l.net - LEAST(l.net, l.owed_fen),
    updated_at = :now
FROM locked l
WHERE a.id = l.id
RETURNING a.guide_id, LEAST(l.net, l.owed_fen) AS recovered
"""
)

_ENTRIES = text(
    """
INSERT INTO guide_commission_entry
    (brand_id, key, guide_id, kind, lines, d_pending, d_frozen, d_settled, d_paying, d_paid,
     d_owed, created_at)
SELECT :brand, 'settle:' || e.first || ':' || e.guide_id, e.guide_id, 'settle', e.n, 0, -e.net,
       e.net - e.recovered, 0, 0, -e.recovered, :now
FROM unnest(CAST(:guides AS bigint[]), CAST(:nets AS bigint[]), CAST(:ns AS int[]),
            CAST(:firsts AS bigint[]), CAST(:recovered AS bigint[]))
     AS e(guide_id, net, n, first, recovered)
"""
)


@dataclasses.dataclass
class Run:
    lines: int = 0
    amount_fen: int = 0
    batches: int = 0


def settle_batch(*, now: dt.datetime, after: int = 0, size: int = BATCH) -> tuple[int, int, int]:
    """Settle one batch of due lines with ids above ``after``; flushes nothing to commit.

    Returns (lines settled, amount, last id looked at — 0 when none was due)."""
    brand = require_brand_id()
    # A batch is a few index lookups per line: compiling it (JIT) costs more than it saves.
    db.session.execute(text("SET LOCAL jit = off"))
    rows = db.session.execute(_MOVE, {"brand": brand, "after": after, "now": now, "n": size}).all()
    last = rows[-1].last or 0 if rows else 0
    groups = [r for r in rows if r.guide_id is not None]
    if not groups:
        return 0, 0, last
    guides = [r.guide_id for r in groups]
    nets = [int(r.net) for r in groups]
    recovered = dict(
        db.session.execute(
            _ACCOUNTS, {"guides": guides, "nets": nets, "brand": brand, "now": now}
        ).all()
    )
    db.session.execute(
        _ENTRIES,
        {
            "brand": brand,
            "now": now,
            "guides": guides,
            "nets": nets,
            "ns": [int(r.n) for r in groups],
            "firsts": [int(r.first) for r in groups],
            "recovered": [int(recovered.get(g, 0)) for g in guides],
        },
    )
    return sum(int(r.n) for r in groups), sum(nets), last


def settle_due(*, now: dt.datetime | None = None, size: int = BATCH, commit=None) -> Run:
    """Settle every due line of the current brand, batch after batch. ``commit`` (the job's)
    is called after each batch so that locks are held for one batch only."""
    now = now or utcnow()
    run, after = Run(), 0
    while True:
        n, amount, last = settle_batch(now=now, after=after, size=size)
        if commit is not None:
            commit()
        if not last:
            break
        run.lines += n
        run.amount_fen += amount
        run.batches += 1
        after = last
    return run
