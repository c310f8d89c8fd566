"""What every CSV upload of the console shares (the catalog's products, guides' customer
bindings): the file's text (UTF-8 with or without BOM, else GB18030), its header matched to
known columns by their Chinese or English titles, the data rows with their row numbers, and
the per-row error the page and the error file show. Each import checks its own rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from core.errors import ValidationError


class ImportFileError(ValidationError):
    """The file as a whole cannot be read (encoding, header, size)."""


@dataclass
class RowError:
    row: int
    column: str
    reason: str
    value: str = ""

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "reason": self.reason, "value": self.value}


def decode(raw: bytes) -> str:
    """The text of an uploaded file: UTF-8 (BOM or not), else GB18030; else refused."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise ImportFileError(
            _l("The file is neither UTF-8 nor GBK text. Save it as CSV (UTF-8) and try again."),
            field="file",
        ) from None


def missing_columns(titles: list[str]) -> ImportFileError:
    return ImportFileError(
        _l("The header lacks the columns: %(names)s.", names="、".join(titles)), field="file"
    )


def read_rows(
    text: str,
    columns: dict[str, tuple[str, ...]],
    *,
    max_rows: int,
    check_header: Callable[[dict[str, int]], None],
) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """The header's known columns (name -> index; ``check_header`` refuses a header that
    lacks what the import needs) and the non-empty data rows with their row numbers (the
    header is row 1); at most ``max_rows`` rows."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(_l("The file is empty."), field="file") from None
    except csv.Error:
        raise ImportFileError(_l("The file is not a CSV file."), field="file") from None
    names: dict[str, int] = {}
    for i, title in enumerate(header):
        t = title.strip().lower()
        for name, aliases in columns.items():
            if t in {a.lower() for a in aliases}:
                names.setdefault(name, i)
    check_header(names)
    rows = []
    try:
        for line in reader:
            if not any(c.strip() for c in line):
                continue
            rows.append((reader.line_num, line))
            if len(rows) > max_rows:
                raise ImportFileError(_l("At most %(n)d rows per file.", n=max_rows), field="file")
    except csv.Error:
        raise ImportFileError(_l("The file is not a CSV file."), field="file") from None
    if not rows:
        raise ImportFileError(_l("The file has no rows under its header."), field="file")
    return names, rows
