"""``core.db.transaction_memo``: kept while the transaction lasts, through a savepoint that
is released, emptied by a savepoint that rolls back and when the transaction ends."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db, transaction_memo


def test_a_memo_lasts_as_long_as_its_transaction(ctx):
    db.session.execute(select(1))
    transaction_memo("rows")[1] = "kept"
    with db.session.begin_nested():
        transaction_memo("rows")[2] = "in a savepoint"
    assert transaction_memo("rows") == {1: "kept", 2: "in a savepoint"}
    db.session.commit()
    assert transaction_memo("rows") == {}


def test_a_savepoint_rolled_back_empties_the_memo(ctx):
    db.session.execute(select(1))
    transaction_memo("rows")[1] = "kept"
    with db.session.begin_nested() as nested:
        transaction_memo("rows")[2] = "written in the savepoint"
        nested.rollback()
    assert transaction_memo("rows") == {}
    transaction_memo("other")[3] = "after"
    db.session.rollback()
    assert transaction_memo("other") == {}
