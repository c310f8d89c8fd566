"""Fixtures of the games tests: campaigns of the current brand, and members who can play."""

from __future__ import annotations

import datetime as dt

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
