"""CSV that a spreadsheet opens safely: no cell starts a formula.

Excel, WPS and LibreOffice run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=cmd|' /C calc'!A0``), and strip a leading tab, CR or LF before deciding. Every
text cell the product writes to a CSV goes through ``safe_cell``: if it starts with one of
those characters, or with white space followed by one, it is prefixed with ``'`` (OWASP's
rule), which the spreadsheet shows but does not run. Numbers stay numbers.

``safe_cell_sql`` is the same rule in PostgreSQL, for files written by ``COPY ... TO STDOUT``
(the rows never pass through Python).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, case, literal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: Any) -> Any:
    """The value, neutralised when it is text a spreadsheet would run as a formula."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(FORMULA_STARTS) or value.lstrip(" \t\r\n").startswith(FORMULA_STARTS):
        return "'" + value
    return value


# A cell that starts with a tab, CR or LF, or with a formula character after any white space
# (the same cells as ``safe_cell``).
FORMULA_PATTERN = r"^([\t\r\n]|[ \t\r\n]*[-=+@])"


def safe_cell_sql(expr: ColumnElement) -> ColumnElement:
    """``safe_cell`` as a SQL expression over a text column (NULL stays NULL)."""
    return case(
        (expr.regexp_match(literal(FORMULA_PATTERN)), literal("'") + expr),
        else_=expr,
    )


class SafeWriter:
    """``csv.writer`` whose every text cell goes through ``safe_cell``."""

    def __init__(self, stream, **kwargs):
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
