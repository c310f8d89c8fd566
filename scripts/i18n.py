"""Keep each package's Chinese catalog in step with its source.

python scripts/i18n.py update [PKG ...]  # extract messages, merge into <pkg>/translations/zh
python scripts/i18n.py check             # exit 1 when a message has no translation
python scripts/i18n.py conflicts         # exit 1 when packages translate one msgid differently

Flask-Babel merges the packages' catalogs into one, the later package winning, so a msgid
that two packages translate differently shows one package's words on the other's pages.
A term with two meanings gets two msgids (or a context), never two translations.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.i18n import CATALOGS  # noqa: E402 - after the path

PACKAGES = list(CATALOGS)


def _paths(pkg: str) -> list[str]:
    out = [pkg]
    if (ROOT / "templates" / pkg).is_dir():
        out.append(f"templates/{pkg}")
    return out


def update(packages: list[str]) -> None:
    for pkg in packages or PACKAGES:
        if not (ROOT / pkg).is_dir():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            pot = Path(tmp) / "messages.pot"
            subprocess.run(  # noqa: S603 - fixed argv, no user input
                [
                    sys.executable,
                    "-m",
                    "babel.messages.frontend",
                    "extract",
                    "-F",
                    "babel.cfg",
                    "-k",
                    "_l",
                    "-k",
                    "lazy_gettext",
                    "-o",
                    str(pot),
                    *_paths(pkg),
                ],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            po = ROOT / pkg / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
            action = "update" if po.exists() else "init"
            subprocess.run(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "babel.messages.frontend",
                    action,
                    "-i",
                    str(pot),
                    "-d",
                    str(ROOT / pkg / "translations"),
                    "-l",
                    "zh",
                    *(["--no-fuzzy-matching"] if action == "update" else []),
                ],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )


def check() -> int:
    missing = 0
    for po in sorted(ROOT.glob("*/translations/zh/LC_MESSAGES/messages.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh)
        for msg in catalog:
            if msg.id and not msg.string:
                print(f"{po.relative_to(ROOT)}: untranslated: {msg.id!r}")
                missing += 1
    return 1 if missing else 0


def conflicts() -> dict[tuple[str | None, str], dict[str, list[str]]]:
    """(context, msgid) -> {msgstr: [packages]} for every msgid translated differently."""
    seen: dict[tuple[str | None, str], dict[str, list[str]]] = {}
    for po in sorted(ROOT.glob("*/translations/zh/LC_MESSAGES/messages.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh)
        pkg = po.relative_to(ROOT).parts[0]
        for msg in catalog:
            if not msg.id or not msg.string:
                continue
            msgid = msg.id if isinstance(msg.id, str) else msg.id[0]
            msgstr = msg.string if isinstance(msg.string, str) else "\x00".join(msg.string)
            seen.setdefault((msg.context, msgid), {}).setdefault(msgstr, []).append(pkg)
    return {key: found for key, found in seen.items() if len(found) > 1}


def report_conflicts() -> int:
    found = conflicts()
    for (context, msgid), strings in sorted(found.items(), key=lambda kv: kv[0][1]):
        where = "; ".join(f"{s!r} in {', '.join(pkgs)}" for s, pkgs in strings.items())
        print(f"{msgid!r}{f' ({context})' if context else ''}: {where}")
    return 1 if found else 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    if cmd == "update":
        update(sys.argv[2:])
        sys.exit(0)
    if cmd == "conflicts":
        sys.exit(report_conflicts())
    sys.exit(check())
