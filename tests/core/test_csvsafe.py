"""Spreadsheet formulas never reach a CSV cell as formulas."""

from __future__ import annotations

import csv
import io

import pytest

from core.csvsafe import SafeWriter, safe_cell


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
