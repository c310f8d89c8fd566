"""Imports and template references go only downward (architecture.md, "Which way imports go").

The checker lives in tests/support/layering.py. The first tests run it on the project; the
rest feed it small synthetic trees to show that it catches what it should, and only that.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support import layering

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_follows_the_layering():
    violations = layering.check(ROOT)
    assert not violations, "imports against the layering:\n" + "\n".join(map(str, violations))


def test_every_package_and_template_folder_has_a_layer():
    assert layering.unplaced(ROOT) == []


# --- The checker on synthetic trees ------------------------------------------------------


def make_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` under ``root``; every folder of a Python file becomes a package."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        if path.suffix == ".py" and path.parent != root:
            for folder in path.relative_to(root).parents[:-1]:
                (root / folder / "__init__.py").touch()
    return root


def reported(root: Path) -> list[str]:
    return [str(v) for v in layering.check(root)]


def test_an_upward_import_at_module_level_is_reported(tmp_path):
    make_tree(
        tmp_path,
        {
            "core/db.py": """
                import os

                from members.models import Member
                import points.ledger as ledger
            """,
        },
    )
    assert reported(tmp_path) == [
        "core/db.py:3: core imports members.models (higher layer)",
        "core/db.py:4: core imports points.ledger (higher layer)",
    ]


def test_an_upward_import_inside_a_function_or_a_condition_is_reported(tmp_path):
    make_tree(
        tmp_path,
        {
            "org/services.py": """
                def rename_store(*, store_id: int) -> None:
                    if store_id:
                        from coupons import services
            """,
            "members/sms.py": """
                import importlib


                class Sender:
                    def load(self):
                        return importlib.import_module("coupons.services")

                    def other(self):
                        return __import__("members.models"), __import__("points", {}, {})
            """,
        },
    )
    assert reported(tmp_path) == [
        "members/sms.py:6: members imports coupons.services (higher layer)",
        "members/sms.py:9: members imports points (higher layer)",
        "org/services.py:3: org imports coupons (higher layer)",
    ]


def test_relative_imports_are_resolved_against_the_package(tmp_path):
    make_tree(
        tmp_path,
        {
            "wechat/sandbox/phone.py": "",
            "wechat/gateway/client.py": """
                from . import retries
                from .. import router
                from ..sandbox import phone
            """,
            "wechat/callback.py": """
                from .router import Router
                from . import sandbox
            """,
            "members/center/views.py": """
                from ..models import Member
                from ...points import ledger
            """,
        },
    )
    assert reported(tmp_path) == [
        # `...points` from members.center reaches past the top package: resolved, not trusted.
        "members/center/views.py:2: members imports points (higher layer)",
        "wechat/callback.py:2: wechat imports wechat.sandbox (sandbox)",
        "wechat/gateway/client.py:3: wechat imports wechat.sandbox.phone (sandbox)",
    ]


def test_importing_the_sandbox_from_product_code_is_reported(tmp_path):
    make_tree(
        tmp_path,
        {
            "wechat/sandbox/phone.py": """
                from wechat.sandbox import store
                from wechat import gateway
                from members import models
            """,
            "wechat/sandbox/store.py": "",
            "members/web_member.py": """
                from wechat import gateway, sandbox


                def init_app(app):
                    import wechat.sandbox.phone
            """,
            "app.py": "from wechat.sandbox import phone\n",
            "wsgi.py": "import wechat.sandbox\n",
        },
    )
    assert reported(tmp_path) == [
        "members/web_member.py:1: members imports wechat.sandbox (sandbox)",
        "members/web_member.py:5: members imports wechat.sandbox.phone (sandbox)",
        # The sandbox is part of wechat and follows wechat's rule.
        "wechat/sandbox/phone.py:3: wechat.sandbox imports members (higher layer)",
    ]


def test_peers_may_not_import_each_other_and_config_imports_nothing(tmp_path):
    make_tree(
        tmp_path,
        {
            "games/draws.py": "from campaigns import segments\nfrom shop import orders\n",
            "campaigns/segments.py": "from guide_distribution.ledger import Entry\n",
            "config.py": "from core.money import Fen\n",
        },
    )
    assert reported(tmp_path) == [
        "campaigns/segments.py:1: campaigns imports guide_distribution.ledger (peer layer)",
        "config.py:1: config imports core.money (higher layer)",
        "games/draws.py:1: games imports campaigns.segments (peer layer)",
    ]


def test_a_template_using_a_higher_or_sandbox_template_is_reported(tmp_path):
    make_tree(
        tmp_path,
        {
            "templates/org/stores.html": """
                {# {% extends "coupons/base.html" %} is only a comment #}
                {%- extends 'members/member/base.html' -%}
                {% block body %}
                  {% include ["core/_row.html", "points/_row.html"] ignore missing %}
                  {% from "coupons/_macros.html" import describe %}
                  {%- import 'wechat/sandbox/_phone.html' as phone %}
                  {% include name %}
                {% endblock %}
            """,
            "templates/members/center/card.html": """
                {% extends "members/member/base.html" %}
                {% from "core/_macros.html" import field %}
            """,
            "templates/wechat/sandbox/phone.html": '{% extends "wechat/console/base.html" %}\n',
        },
    )
    assert reported(tmp_path) == [
        "templates/org/stores.html:2: org imports members/member/base.html (higher layer)",
        "templates/org/stores.html:4: org imports points/_row.html (higher layer)",
        "templates/org/stores.html:5: org imports coupons/_macros.html (higher layer)",
        "templates/org/stores.html:6: org imports wechat/sandbox/_phone.html (sandbox)",
    ]


def test_downward_imports_are_not_reported(tmp_path):
    make_tree(
        tmp_path,
        {
            "core/db.py": "import config\nimport sqlalchemy\nfrom os import path\n",
            "org/models.py": "from core.db import db\n",
            "wechat/gateway.py": "from org.models import Brand\nimport config\n",
            "members/services.py": """
                from core import db
                from wechat import gateway

                from . import models
            """,
            "coupons/services.py": "import importlib\nimportlib.import_module('points.ledger')\n",
            "games/draws.py": "from shop.orders import Order\nfrom members import services\n",
            "app.py": "import games.draws\nimport wechat.sandbox\n",
            "templates/members/center/card.html": '{% extends "core/base.html" %}\n',
            "templates/wechat/sandbox/phone.html": '{% extends "wechat/sandbox/base.html" %}\n',
        },
    )
    assert reported(tmp_path) == []


def test_product_code_may_not_import_tests_or_bench(tmp_path):
    make_tree(
        tmp_path,
        {
            "core/demo.py": "from tests.factories import make_brand\n",
            "app.py": "def bench():\n    import bench.run\n",
        },
    )
    assert reported(tmp_path) == [
        "app.py:2: app imports bench.run (higher layer)",
        "core/demo.py:1: core imports tests.factories (higher layer)",
    ]


def test_tests_bench_and_migrations_are_not_checked(tmp_path):
    make_tree(
        tmp_path,
        {
            "tests/core/test_db.py": "from members import models\n",
            "bench/run.py": "import coupons\n",
            "migrations/env.py": "from app import create_app\n",
            "scripts/i18n.py": "import app\n",
        },
    )
    assert reported(tmp_path) == []


def test_a_package_or_template_folder_outside_the_layers_is_unplaced(tmp_path):
    make_tree(
        tmp_path,
        {
            "core/db.py": "",
            "extras/tool.py": "",
            "templates/core/base.html": "",
            "templates/errors/404.html": "",
        },
    )
    assert layering.unplaced(tmp_path) == ["extras (python)", "templates/errors"]
