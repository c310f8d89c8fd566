"""The SQL statements the application sends while a block runs."""

from __future__ import annotations

import threading

from sqlalchemy import event

from core.db import db


class Statements(list):
    """The SQL statements this thread sends to the database while it is open (its items:
    their text; ``sent``: each with its parameters); the test's in-process servers (WeChat's
    sandbox calling the app back) are not counted."""

    def __enter__(self):
        self.thread = threading.get_ident()
        self.sent: list[tuple[str, object]] = []
        event.listen(db.engine, "before_cursor_execute", self._add)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._add)

    def _add(self, conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == self.thread:
            self.append(statement)
            if not executemany:
                self.sent.append((statement, parameters))
