"""Many rows at once, set-based (INSERT ... SELECT generate_series): lists and searches are
tested past their page sizes and count caps without thousands of ORM round trips."""

from __future__ import annotations

from sqlalchemy import text

from core.db import db
from members.models.member import card_no_sql


def members(
    brand_id: int,
    n: int,
    *,
    name: str = "'会员' || g",
    phone: str = "'137' || lpad((g + :offset)::text, 8, '0')",
    offset: int = 0,
    store_id: int | None = None,
    guide_id: int | None = None,
) -> None:
    """``n`` active members of a brand. ``name`` and ``phone`` are SQL expressions of the
    series number ``g`` (1..n); card numbers are computed from the new ids as the import
    computes them."""
    db.session.execute(
        text(
            "INSERT INTO member (brand_id, phone, card_no, name, gender, source, status,"
            " store_id, guide_id, created_at, updated_at)"
            f" SELECT :b, {phone}, 'tmp-' || g, {name}, '', 'import', 'active',"  # noqa: S608
            " :store, :guide, now(), now() FROM generate_series(1, :n) AS g"
        ),
        {"b": brand_id, "n": n, "offset": offset, "store": store_id, "guide": guide_id},
    )
    db.session.execute(
        text(
            f"UPDATE member SET card_no = {card_no_sql('id')}"  # noqa: S608
            " WHERE brand_id = :b AND card_no LIKE 'tmp-%'"
        ),
        {"b": brand_id},
    )
    # As autovacuum would: move the GIN indexes' pending entries into the index proper (the
    # planner prices a long pending list as a scan of all of it) and refresh the statistics.
    db.session.execute(
        text(
            "SELECT gin_clean_pending_list(c.oid) FROM pg_index i JOIN pg_class c"
            " ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
            " WHERE i.indrelid = 'member'::regclass AND a.amname = 'gin'"
        )
    )
    db.session.execute(text("ANALYZE member"))
    db.session.commit()
