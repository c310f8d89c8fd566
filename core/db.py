"""Database: the SQLAlchemy extension, the model base and column helpers."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from flask import current_app, has_request_context, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger, DateTime, MetaData, TextClause, bindparam, event, text, types
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

# Extensions the schema's indexes use (pg_trgm: trigram search on names and phones). Trusted
# extensions, so the database owner may create them; migrations create them the same way.
EXTENSIONS = ("pg_trgm",)


@event.listens_for(Base.metadata, "before_create")
def _create_extensions(target, connection, **kw) -> None:
    for name in EXTENSIONS:
        connection.exec_driver_sql(f"CREATE EXTENSION IF NOT EXISTS {name}")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(types.TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use core.db.utcnow() or an aware value")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.astimezone(dt.UTC)


class IdMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


@functools.lru_cache(maxsize=256)
def insert_ignoring(
    table_name: str, columns: tuple[str, ...], conflict: tuple[str, ...], returning: str = ""
) -> TextClause:
    """``INSERT INTO table (columns) VALUES (:columns) ON CONFLICT (conflict) DO NOTHING
    [RETURNING returning]`` as a statement SQLAlchemy compiles once.

    SQLAlchemy never caches the compiled form of PostgreSQL's ``insert()`` construct (its
    ON CONFLICT clause has no cache key), so on a hot path each execution compiled it again,
    which cost more CPU than the round trip. The column types still process the values. A
    text statement does not autoflush the session: its callers flush first, as the ORM's
    insert did for them.
    """
    table = db.metadata.tables[table_name]
    # Only names of the table's own columns reach the text (a KeyError otherwise).
    cols = [table.c[c].name for c in columns]
    target = [table.c[c].name for c in conflict]
    back = f" RETURNING {table.c[returning].name}" if returning else ""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(cols)})"  # noqa: S608 - column names only
        f" VALUES ({', '.join(':' + c for c in cols)})"
        f" ON CONFLICT ({', '.join(target)}) DO NOTHING{back}"
    )
    stmt = text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))
    if returning:
        stmt = stmt.columns(table.c[returning])
    return stmt


def savepoint_event(session: Session) -> bool:
    """Whether a commit or rollback event is a savepoint's (``begin_nested``): SQLAlchemy
    sends ``before_commit``, ``after_commit`` and ``after_rollback`` for a savepoint's release
    or rollback too, while the transaction around it goes on. A hook acting on what the whole
    transaction did (writing its shared rows, relaying its jobs, dropping what Redis kept for
    it) returns early on those, and acts at the outermost commit or rollback."""
    return session.in_nested_transaction()


_MEMOS = "wmb_transaction_memos"


def transaction_memo(name: str) -> dict:
    """A dict kept with the current transaction of ``db.session``, for what cannot change
    while it lasts (a row it locked, a snapshot it wrote or read) and that several of its
    steps ask for: the session keeps loaded rows only while something refers to them. It is
    emptied when the transaction ends and when any savepoint rolls back (what it kept may
    have been written or locked there)."""
    return db.session.info.setdefault(_MEMOS, {}).setdefault(name, {})


@event.listens_for(Session, "after_soft_rollback")
def _forget_memos_on_rollback(session: Session, _previous) -> None:
    session.info.pop(_MEMOS, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_memos(session: Session, transaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_MEMOS, None)


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def model_to_dict(obj: Any, exclude: set[str] | frozenset[str] = frozenset()) -> dict:
    """Plain column values of a model instance (for audit records and exports)."""
    out = {}
    for col in obj.__table__.columns:
        if col.key in exclude:
            continue
        val = getattr(obj, col.key)
        if isinstance(val, dt.datetime):
            val = val.isoformat()
        out[col.key] = val
    return out


@event.listens_for(Session, "after_begin")
def _console_statement_timeout(_session, _transaction, connection) -> None:
    """A console page's statements may not run away: each transaction of a console request
    gets CONSOLE_STATEMENT_TIMEOUT_MS (jobs and the callback keep the server's default)."""
    if not has_request_context() or not request.path.startswith("/console"):
        return
    ms = int(current_app.config.get("CONSOLE_STATEMENT_TIMEOUT_MS") or 0)
    if ms > 0:
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
