"""One msgid, one Chinese text: the packages' catalogs merge into one, so two packages that
translate a msgid differently show one package's words on the other's pages."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script(root: Path | None = None):
    spec = importlib.util.spec_from_file_location("i18n_script", ROOT / "scripts/i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if root is not None:
        module.ROOT = root
    return module


def test_no_msgid_is_translated_two_ways_across_packages():
    found = _script().conflicts()
    assert not found, "\n".join(
        f"{msgid!r}: " + "; ".join(f"{s} in {', '.join(p)}" for s, p in strings.items())
        for (_ctx, msgid), strings in found.items()
    )


def test_the_check_finds_a_msgid_translated_two_ways(tmp_path):
    for pkg in ("org", "coupons"):
        src = ROOT / pkg / "translations/zh/LC_MESSAGES/messages.po"
        dst = tmp_path / pkg / "translations/zh/LC_MESSAGES/messages.po"
        dst.parent.mkdir(parents=True)
        shutil.copy(src, dst)
    with (tmp_path / "coupons/translations/zh/LC_MESSAGES/messages.po").open("a") as fh:
        fh.write('\nmsgid "Staff"\nmsgstr "店员"\n')
    with (tmp_path / "org/translations/zh/LC_MESSAGES/messages.po").open("a") as fh:
        fh.write('\nmsgctxt "till"\nmsgid "Staff"\nmsgstr "店员"\n')
    found = _script(tmp_path).conflicts()
    assert list(found) == [(None, "Staff")]
    assert sorted(found[(None, "Staff")]) == ["员工", "店员"]


def test_a_request_keeps_its_translations_and_follows_a_locale_change(app):
    from flask_babel import force_locale, gettext, refresh

    with app.test_request_context("/?lang=en"):
        assert gettext("Back") == "Back" and gettext("Back") == "Back"
        with force_locale("zh"):
            assert gettext("Back") == "返回"
        assert gettext("Back") == "Back"
    with app.test_request_context("/"):
        assert gettext("Back") == "返回"
        with force_locale("en"):
            assert gettext("Back") == "Back"
        assert gettext("Back") == "返回"
        from flask import request

        request.args = {"lang": "en"}
        refresh()
        assert gettext("Back") == "Back"
