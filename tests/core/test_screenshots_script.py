"""`make screenshots` finds the console and member pages to shoot from the URL map."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tests.support.apps import DATABASE_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts/screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pages_to_shoot_come_from_the_url_map(app):
    shots = _script()
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL}
    console, member = shots._pages(env)
    assert {"/console/", "/console/members", "/console/points/report"} <= set(console)
    assert {"/m/demo/", "/m/demo/points", "/m/demo/coupons"} <= set(member)
    assert not [p for p in console + member if "export" in p or p.endswith(".zip")]
    assert shots._name("member", 3, "/m/demo/points") == "member-03-m-demo-points.png"
