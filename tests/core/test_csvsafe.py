"""Spreadsheet formulas never reach a CSV cell as formulas."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import String, cast, literal, select

from core.csvsafe import SafeWriter, safe_cell, safe_cell_sql
from core.db import db


@pytest.mark.parametrize(
    "cell",
    ["=cmd|' /C calc'!A0", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1", " =1+1", "\n@x"],
)
def test_formula_cells_are_prefixed(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["张三", "13800138000", "a=b", "", None, 12, -5, 3.5])
def test_other_cells_are_left_alone(cell):
    assert safe_cell(cell) == cell


def test_the_writer_neutralises_every_text_cell():
    buf = io.StringIO()
    SafeWriter(buf).writerows([["名字", "=1+1"], [-3, "@x"]])
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows == [["名字", "'=1+1"], ["-3", "'@x"]]


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.text(alphabet=st.sampled_from(" \t\r\n=+-@'a1张|"), max_size=6)
        | st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=8,
        ),
        min_size=1,
        max_size=20,
    )
)
def test_the_sql_rule_neutralises_the_same_cells(app, cells):
    """COPY-written files (safe_cell_sql) and Python-written files (safe_cell) agree."""
    with app.app_context():
        got = [
            db.session.execute(select(safe_cell_sql(cast(literal(c), String)))).scalar_one()
            for c in cells
        ]
        db.session.remove()
    assert got == [safe_cell(c) for c in cells]
