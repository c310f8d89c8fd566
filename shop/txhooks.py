"""Work outside PostgreSQL that must follow the fate of the current transaction: Redis
counters of flash sales are given back when the transaction that took them rolls back (or
ends without committing), and moved only after a commit when the database changed first.

A hook that fails is logged, never raised: the transaction's outcome is already decided.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.db import db, savepoint_event

log = logging.getLogger(__name__)
_COMMIT = "shop_on_commit"
_ROLLBACK = "shop_on_rollback"


def on_commit(fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction commits (dropped if it does not)."""
    db.session.info.setdefault(_COMMIT, []).append(fn)


def on_rollback(fn: Callable[[], None]) -> None:
    """Run ``fn`` if the current transaction ends without committing."""
    db.session.info.setdefault(_ROLLBACK, []).append(fn)


def _run(fns: list[Callable[[], None]] | None) -> None:
    for fn in fns or ():
        try:
            fn()
        except Exception:
            log.exception("shop transaction hook failed")


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if savepoint_event(session):  # a savepoint: the transaction goes on
        return
    session.info.pop(_ROLLBACK, None)
    _run(session.info.pop(_COMMIT, None))


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    session.info.pop(_COMMIT, None)
    _run(session.info.pop(_ROLLBACK, None))
