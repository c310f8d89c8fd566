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
    """msgctxt + msgid of an entry (continuation lines included), or None for a non-entry."""
    key, inside = [], False
    for line in entry.splitlines():
        if line.startswith(("msgctxt ", "msgid ")):
            inside = True
        elif line.startswith(("msgstr", "msgid_plural")):
            break
        if inside and not line.startswith("#"):
            key.append(line)
    return "\n".join(key) if key else None


def dedupe(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    entries = re.split(r"\n\s*\n", text.strip("\n"))
    seen: set[str] = set()
    kept, dropped = [], 0
    for entry in entries:
        k = _key(entry)
        if k is not None and k in seen and k != 'msgid ""':
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
