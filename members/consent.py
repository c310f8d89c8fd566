"""Recording subscribe-message consent from WeChat's three events, and the acceptances pushes
take before they send (see models.consent)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select, text
from sqlalchemy.dialects.postgresql import insert

from core.db import db, utcnow
from core.tenancy import require_brand_id
from members.models.consent import (
    ACCEPT,
    CHANGE,
    POPUP,
    REFUSED,
    RELEASED,
    RESERVED,
    SENT,
    UNCERTAIN,
    USED,
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
    if delivered and _match_use(openid=openid, template_id=template_id, msg_id=msg_id):
        delivered = False  # a push took this acceptance when it sent: not a second one
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


def _match_use(*, openid: str, template_id: str, msg_id: str | None) -> bool:
    """The acceptance a push took for the send WeChat reports: the one with its msgid, else
    the oldest whose msgid is not known yet (the report came before the push recorded
    WeChat's answer, or WeChat's answer carried none); it is marked used."""
    row = db.session.execute(
        text(
            "UPDATE subscribe_consent_use SET state = :used, msg_id = :m, updated_at = :now"
            " WHERE id = (SELECT id FROM subscribe_consent_use WHERE brand_id = :b"
            " AND openid = :o AND template_id = :t AND (msg_id = :m OR (msg_id IS NULL"
            " AND state IN (:reserved, :uncertain, :used)))"
            " ORDER BY msg_id IS NULL, id LIMIT 1 FOR UPDATE)"
            " RETURNING id"
        ),
        {
            "b": require_brand_id(),
            "o": openid,
            "t": template_id,
            "m": msg_id or "",
            "now": utcnow(),
            "used": USED,
            "reserved": RESERVED,
            "uncertain": UNCERTAIN,
        },
    ).scalar()
    return row is not None


def reserve_sends(*, template_id: str, wanted: dict[str, str]) -> dict[str, str]:
    """Take one acceptance of ``template_id`` for each send ``key -> openid`` (one
    conditional update per user row, so concurrent pushes never take the same acceptance;
    a send that took one before, e.g. resumed after a worker died, keeps it). Returns
    ``key -> state`` for the sends that hold one: ``reserved`` (may go) or ``used``
    (WeChat already reported the message: do not send again); other keys have none."""
    if not wanted:
        return {}
    b, now = require_brand_id(), utcnow()
    held = dict(
        db.session.execute(
            text(
                "SELECT key, state FROM subscribe_consent_use WHERE brand_id = :b"
                " AND key = ANY(CAST(:keys AS text[])) AND state <> :released"
            ),
            {"b": b, "keys": list(wanted), "released": RELEASED},
        ).all()
    )
    out = {k: (USED if st == USED else RESERVED) for k, st in held.items() if st != REFUSED}
    need: dict[str, str] = {}  # openid -> key (one send per user and batch)
    for k, openid in wanted.items():
        if k not in held:
            need.setdefault(openid, k)
    if not need:
        return out
    # rows locked in id order (no deadlock between two pushes); the condition is checked
    # again on the row another push just changed, once it commits
    taken = (
        db.session.execute(
            text(
                "WITH take AS (SELECT id FROM subscribe_consent WHERE brand_id = :b"
                " AND template_id = :t AND openid = ANY(CAST(:openids AS text[]))"
                " AND status = :accept AND accepts > sends ORDER BY id FOR UPDATE)"
                " UPDATE subscribe_consent c SET sends = c.sends + 1, updated_at = :now"
                " FROM take WHERE c.id = take.id AND c.accepts > c.sends RETURNING c.openid"
            ),
            {"b": b, "t": template_id, "openids": list(need), "accept": ACCEPT, "now": now},
        )
        .scalars()
        .all()
    )
    if not taken:
        return out
    keys = [need[o] for o in taken]
    booked = set(
        db.session.execute(
            text(
                "INSERT INTO subscribe_consent_use AS u (brand_id, openid, template_id, key,"
                " state, created_at, updated_at)"
                " SELECT :b, o, :t, k, :reserved, :now, :now"
                " FROM unnest(CAST(:openids AS text[]), CAST(:keys AS text[])) AS s(o, k)"
                " ON CONFLICT (brand_id, key) DO UPDATE SET state = :reserved, msg_id = NULL,"
                " updated_at = :now WHERE u.state = :released RETURNING u.key"
            ),
            {
                "b": b,
                "t": template_id,
                "openids": taken,
                "keys": keys,
                "reserved": RESERVED,
                "released": RELEASED,
                "now": now,
            },
        ).scalars()
    )
    # a key another worker booked meanwhile keeps its own acceptance: this one goes back
    extra = [o for o, k in zip(taken, keys, strict=True) if k not in booked]
    _give_back_counts(template_id=template_id, openids=extra)
    out.update({k: RESERVED for k in booked})
    return out


def settle_sends(
    *,
    used: dict[str, str | None] | None = None,
    refused: list[str] | None = None,
    uncertain: list[str] | None = None,
    give_back: list[str] | None = None,
) -> None:
    """What became of sends that took an acceptance (by key): ``used`` (key -> WeChat's
    msgid, if any), ``refused`` (WeChat said none was left: it stays taken), ``uncertain``
    (no answer: WeChat may have used it, so it stays taken and a retry reuses it),
    ``give_back`` (WeChat refused without using it, or the send was never tried)."""
    b, now = require_brand_id(), utcnow()
    if used:
        db.session.execute(
            text(
                "UPDATE subscribe_consent_use u SET state = :used,"
                " msg_id = coalesce(u.msg_id, s.m), updated_at = :now"
                " FROM unnest(CAST(:keys AS text[]), CAST(:msgids AS text[])) AS s(k, m)"
                " WHERE u.brand_id = :b AND u.key = s.k AND u.state IN (:reserved, :uncertain)"
            ),
            {
                "b": b,
                "keys": list(used),
                "msgids": list(used.values()),
                "used": USED,
                "reserved": RESERVED,
                "uncertain": UNCERTAIN,
                "now": now,
            },
        )
    for keys, state in ((refused, REFUSED), (uncertain, UNCERTAIN)):
        if keys:
            db.session.execute(
                text(
                    "UPDATE subscribe_consent_use SET state = :state, updated_at = :now"
                    " WHERE brand_id = :b AND key = ANY(CAST(:keys AS text[]))"
                    " AND state IN (:reserved, :uncertain)"
                ),
                {
                    "b": b,
                    "keys": list(keys),
                    "state": state,
                    "reserved": RESERVED,
                    "uncertain": UNCERTAIN,
                    "now": now,
                },
            )
    if give_back:
        # only a reservation WeChat surely did not use: never an uncertain one
        rows = db.session.execute(
            text(
                "UPDATE subscribe_consent_use SET state = :released, updated_at = :now"
                " WHERE brand_id = :b AND key = ANY(CAST(:keys AS text[]))"
                " AND state = :reserved RETURNING template_id, openid"
            ),
            {
                "b": b,
                "keys": list(give_back),
                "released": RELEASED,
                "reserved": RESERVED,
                "now": now,
            },
        ).all()
        by_template: dict[str, list[str]] = {}
        for template_id, openid in rows:
            by_template.setdefault(template_id, []).append(openid)
        for template_id, openids in by_template.items():
            _give_back_counts(template_id=template_id, openids=openids)


def _give_back_counts(*, template_id: str, openids: list[str]) -> None:
    if not openids:
        return
    db.session.execute(
        text(
            "WITH back AS (SELECT o, count(*) AS n FROM unnest(CAST(:openids AS text[])) AS o"
            " GROUP BY o), rows AS (SELECT c.id, back.n FROM subscribe_consent c JOIN back"
            " ON back.o = c.openid WHERE c.brand_id = :b AND c.template_id = :t"
            " ORDER BY c.id FOR UPDATE OF c)"
            " UPDATE subscribe_consent c SET sends = greatest(c.sends - rows.n, 0),"
            " updated_at = :now FROM rows WHERE c.id = rows.id"
        ),
        {"b": require_brand_id(), "t": template_id, "openids": openids, "now": utcnow()},
    )


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
