"""The console's top bar says who is signed in: a name, or a role and a masked phone."""

from __future__ import annotations

import re

from core.db import db
from tests import factories as f


def _topbar_user(client) -> list[str]:
    html = client.get("/console/").get_data(as_text=True)
    m = re.search(r'data-testid="topbar-user">(.*?)</span>\s*<form', html, re.S)
    assert m, html[:500]
    return re.sub(r"<[^>]+>", " ", m.group(1)).split()


def test_the_top_bar_shows_the_staff_s_name_and_role(client, ctx):
    b = f.brand()
    manager = f.staff(b, "store_manager", f.store(b), phone="13800138123")
    manager.name = "王店长"
    db.session.commit()
    f.login(client, b, manager)
    assert _topbar_user(client) == ["王店长", "店长"]


def test_a_staff_without_a_name_shows_role_and_masked_phone_never_the_phone(client, ctx):
    b = f.brand()
    admin = f.staff(b, phone="13800138123")
    admin.name = "  "
    db.session.commit()
    f.login(client, b, admin)
    assert _topbar_user(client) == ["品牌管理员", "138****8123"]
    assert "13800138123" not in client.get("/console/").get_data(as_text=True)
