"""The log of callback deliveries (``wechat_inbound``), written off the callback's hot path.

A message whose handlers did not use the database (a keyword reply from the cached chatbot
rules) is not inserted by the callback: its record goes to the brand's Redis stream in the
same round trip as its cached reply, and ``flush_inbound`` (a periodic job) moves the stream
into the table in batches. Entries leave the stream only after their rows are committed, and
the insert skips rows already there (unique ``brand_id`` + ``dedupe_key``), so a flusher that
dies half-way, or two flushers racing, neither lose nor duplicate a record. Messages whose
handlers did use the database get their row in that same transaction instead (``insert_now``).

Redis holds the records until they are flushed: run it with appendonly (AOF) so that a Redis
restart keeps them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.db import db, insert_ignoring, savepoint_event
from core.jobs import job
from core.redis import get_redis, key
from org.models import Brand
from wechat.models import InboundMessage

log = logging.getLogger(__name__)

FLUSH_BATCH = 500
# One run of the job moves at most this many rows; the next run takes the rest.
FLUSH_MAX = 50_000
_ACK = "wmb_inbound_ack"
_TABLE = InboundMessage.__table__
# INSERT ... ON CONFLICT (brand_id, dedupe_key) DO NOTHING: a record flushed twice is kept once
_INSERT = pg_insert(_TABLE).on_conflict_do_nothing(index_elements=["brand_id", "dedupe_key"])


def stream_key(brand_id: int) -> str:
    return key(brand_id, "wx-inbound")


def _row(values: dict[str, Any]) -> dict[str, Any]:
    row = dict(values)
    row["created_at"] = dt.datetime.fromtimestamp(row.pop("ts"), dt.UTC)
    return row


_COLUMNS = (
    "brand_id",
    "openid",
    "msg_type",
    "event",
    "event_key",
    "msg_id",
    "payload",
    "dedupe_key",
    "created_at",
)


def insert_now(values: dict[str, Any]) -> None:
    """Insert a record in the current transaction (values as for ``encode``).

    One row through ``insert_ignoring`` (compiled once), not ``_INSERT``: SQLAlchemy compiles
    PostgreSQL's ``insert()`` again on every execution, which on the callback's path cost
    more than the round trip.
    """
    row = _row(values)
    db.session.execute(
        insert_ignoring(_TABLE.name, _COLUMNS, ("brand_id", "dedupe_key")),
        {c: row.get(c) for c in _COLUMNS},
    )


def encode(values: dict[str, Any]) -> str:
    """A record as stored in the stream's ``r`` field.

    ``values``: brand_id, openid, msg_type, event, event_key, msg_id, payload, dedupe_key
    and ``ts`` (the Unix time it arrived).
    """
    return json.dumps(values, ensure_ascii=False)


@job("low", timeout=120, retries=1)
def flush_inbound(limit: int = FLUSH_MAX) -> int:
    """Move buffered callback records from Redis into ``wechat_inbound``; returns rows seen."""
    r = get_redis()
    brand_ids = list(db.session.execute(select(Brand.id).order_by(Brand.id)).scalars())
    if not brand_ids:
        return 0
    pipe = r.pipeline(transaction=False)
    for brand_id in brand_ids:
        pipe.xlen(stream_key(brand_id))
    pending = [b for b, n in zip(brand_ids, pipe.execute(), strict=True) if n]
    seen = 0
    for brand_id in pending:
        stream, start = stream_key(brand_id), "-"
        while seen < limit:
            entries = r.xrange(stream, min=start, count=min(FLUSH_BATCH, limit - seen))
            if not entries:
                break
            rows, ids = [], []
            for entry_id, fields in entries:
                ids.append(entry_id)
                try:
                    values = json.loads(fields[b"r"])
                    if values["brand_id"] != brand_id:
                        raise ValueError("record of another brand")
                    rows.append(_row(values))
                except (KeyError, TypeError, ValueError):
                    log.error("dropping a malformed inbound record %s in %s", entry_id, stream)
            if rows:
                db.session.execute(_INSERT, rows)
            db.session.info.setdefault(_ACK, []).append((stream, ids))
            seen += len(ids)
            start = "(" + entries[-1][0].decode()
    return seen


@event.listens_for(Session, "after_commit")
def _ack_committed(session: Session) -> None:
    if savepoint_event(session):
        return
    acks = session.info.pop(_ACK, None)
    if not acks:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for stream, ids in acks:
            pipe.xdel(stream, *ids)
        pipe.execute()
    except Exception:
        # The rows are committed; the entries will be flushed again and skipped as duplicates.
        log.warning("inbound records flushed but not removed from Redis", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_acks(session: Session) -> None:
    if savepoint_event(session):
        return
    session.info.pop(_ACK, None)
