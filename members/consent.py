"""Recording subscribe-message consent from WeChat's three events (see models.consent)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert

from core.db import db, utcnow
from core.tenancy import require_brand_id
from members.models.consent import (
    ACCEPT,
    CHANGE,
    POPUP,
    SENT,
    SubscribeConsent,
    SubscribeConsentEvent,
)
from wechat import router
from wechat.events import CHANGE as CHANGE_EVENT
from wechat.events import POPUP as POPUP_EVENT
from wechat.events import SENT as SENT_EVENT

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def record_choice(
    *,
    openid: str,
    template_id: str,
    kind: str,
    status: str,
    at: dt.datetime,
    popup_scene: int | None = None,
    msg_id: str | None = None,
    error_code: int | None = None,
) -> bool:
    """Record one reported choice or send; False when it was recorded before (a retry)."""
    brand_id = require_brand_id()
    dedupe = f"{kind}:{int(at.timestamp())}:{msg_id or ''}"
    new = db.session.execute(
        insert(SubscribeConsentEvent)
        .values(
            brand_id=brand_id,
            openid=openid,
            template_id=template_id,
            kind=kind,
            status=status[:64],
            popup_scene=popup_scene,
            msg_id=msg_id,
            error_code=error_code,
            occurred_at=at,
            dedupe=dedupe,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "openid", "template_id", "dedupe"])
        .returning(SubscribeConsentEvent.id)
    ).scalar()
    if new is None:
        return False
    delivered = kind == SENT and error_code == 0
    choice = kind in (POPUP, CHANGE)
    stmt = insert(SubscribeConsent).values(
        brand_id=brand_id,
        openid=openid,
        template_id=template_id,
        # a send implies an earlier acceptance, older than any real choice
        status=status[:16] if choice else ACCEPT,
        chosen_at=at if choice else _EPOCH,
        accepts=1 if kind == POPUP and status == ACCEPT else 0,
        sends=1 if delivered else 0,
        updated_at=utcnow(),
    )
    current, excluded = SubscribeConsent.__table__.c, stmt.excluded
    newer = excluded.chosen_at >= current.chosen_at
    db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["brand_id", "openid", "template_id"],
            set_={
                "status": case((newer, excluded.status), else_=current.status),
                "chosen_at": func.greatest(current.chosen_at, excluded.chosen_at),
                "accepts": current.accepts + excluded.accepts,
                "sends": current.sends + excluded.sends,
                "updated_at": excluded.updated_at,
            },
        )
    )
    return True


def current_choices(*, openid: str) -> dict[str, SubscribeConsent]:
    """A user's current choice per template id."""
    rows = db.session.execute(
        select(SubscribeConsent).where(SubscribeConsent.openid == openid)
    ).scalars()
    return {row.template_id: row for row in rows}


def _at(ctx: router.Context) -> dt.datetime:
    return dt.datetime.fromtimestamp(ctx.create_time, dt.UTC)


@router.on("event", POPUP_EVENT, priority=50)
@router.on("event", CHANGE_EVENT, priority=50)
def on_choice(ctx: router.Context) -> None:
    """The user answered the subscribe prompt, or changed a template in their settings."""
    kind = POPUP if ctx.event_lower == POPUP_EVENT else CHANGE
    for choice in ctx.subscribe_choices:
        record_choice(
            openid=ctx.openid,
            template_id=choice.template_id,
            kind=kind,
            status=choice.status,
            at=_at(ctx),
            popup_scene=choice.popup_scene,
        )


@router.on("event", SENT_EVENT, priority=50)
def on_sent(ctx: router.Context) -> None:
    """WeChat reports what became of subscribe messages we sent."""
    for sent in ctx.subscribe_sent:
        record_choice(
            openid=ctx.openid,
            template_id=sent.template_id,
            kind=SENT,
            status=sent.error_status or "",
            at=_at(ctx),
            msg_id=sent.msg_id,
            error_code=sent.error_code,
        )
