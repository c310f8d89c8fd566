"""Drop repeated entries from message catalogs (after merges that appended the same msgid).

Usage: python scripts/po_dedupe.py [FILE.po ...]  (default: every */translations/**/*.po)
The first entry of each msgid (with its msgctxt) is kept; the file is rewritten only when it
had repeats.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _key(entry: str) -> str | None:
    ctx = re.search(r'^msgctxt (".*")$', entry, re.M)
    ident = re.search(r'^msgid ((?:".*"\n?)+?)(?=^msgid_plural|^msgstr)', entry, re.M | re.S)
    if ident is None:
        return None
    return (ctx.group(1) if ctx else "") + "|" + ident.group(1)


def dedupe(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    entries = re.split(r"\n\s*\n", text.strip("\n"))
    seen: set[str] = set()
    kept, dropped = [], 0
    for entry in entries:
        k = _key(entry)
        if k is not None and k in seen and k != '|""\n':
            dropped += 1
            continue
        if k is not None:
            seen.add(k)
        kept.append(entry)
    if dropped:
        path.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return dropped


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted(ROOT.glob("*/translations/*/LC_MESSAGES/*.po"))
    for path in files:
        n = dedupe(path)
        if n:
            print(f"{path}: {n} repeated entries dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
