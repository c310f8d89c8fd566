"""Fixtures of the games tests: campaigns of the current brand, and members who can play."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest

from core.db import db, utcnow
from games import services
from tests import factories


def window(hours: int = 24 * 30) -> dict:
    now = utcnow()
    return {"starts_at": now - dt.timedelta(hours=1), "ends_at": now + dt.timedelta(hours=hours)}


def settings(**kw) -> dict:
    values = {"name": "幸运大转盘", "contact": "400-000-0000", **window()}
    values.update(kw)
    return values


def make_campaign(*, kind: str = "wheel", prizes: list | None = None, start: bool = True, **kw):
    """A campaign of the current brand (live unless ``start=False``), committed."""
    if prizes is None:
        prizes = [
            {"name": "10积分", "kind": "points", "points": 10, "value_fen": 10, "weight": 30},
            {"name": "谢谢参与", "kind": "none", "weight": 70},
        ]
    campaign = services.create_campaign(kind=kind, values=settings(**kw), prizes=prizes)
    if start:
        services.start_campaign(campaign_id=campaign.id)
    db.session.commit()
    return campaign


def player(**kw):
    """An activated member (phone verified): may win prizes of value."""
    return factories.member(activated=True, **kw)


@pytest.fixture
def campaign(brand):
    return make_campaign()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A worker process that plays once (request key "k1") and is killed: after the play's commit
# (its grant never runs) or before it (nothing of the play is committed).
_DYING_PLAYER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    from core.db import db
    from core.tenancy import use_brand
    from games import services
    from tests.support.apps import build_app

    app = build_app()
    with app.app_context(), use_brand({brand_id}):
        draw = services.play(
            campaign_id={campaign_id}, member_id={member_id}, request_key="k1", ip=None
        )
        if {commit}:
            db.session.commit()
        print(draw.id, draw.status, flush=True)
        os._exit(9)
    """
)


def play_and_die(brand_id: int, campaign_id: int, member_id: int, *, commit: bool):
    """Run the dying worker; answers its draw's (id, status) as it printed them."""
    script = _DYING_PLAYER.format(
        root=ROOT, brand_id=brand_id, campaign_id=campaign_id, member_id=member_id,
        commit=commit,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 9, done.stderr[-2000:]
    draw_id, status = done.stdout.split()[-2:]
    return int(draw_id), status
