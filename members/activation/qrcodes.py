"""Store and guide QR codes: creation through the gateway, scene lookup, statistics, their
printable posters and the list the sandbox phone simulator scans from.

Scenes are ``s:<store code>`` and ``g:<staff id>`` (WeChat allows 1-64 characters). A scene
is never trusted on its own: it is resolved in the receiving brand's own QR table, so a
scene of another brand, or one typed by hand, attributes nothing.
"""

from __future__ import annotations

import datetime as dt
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from members.activation import posters
from members.models import (
    EV_ACTIVATION,
    EV_FOLLOW,
    EV_SCAN,
    QR_GUIDE,
    QR_STORE,
    MemberQrCode,
    MemberQrEvent,
)
from org.models import Brand, Staff, Store
from org.services import list_stores
from wechat import gateway

# A scan this recent still attributes the activation that follows it.
ATTRIBUTION_WINDOW = dt.timedelta(days=30)


def scene_for(*, kind: str, store: Store | None = None, staff: Staff | None = None) -> str:
    """The scene string of a store's or a guide's code."""
    if kind == QR_STORE and store is not None:
        return f"s:{store.code}"[:64]
    if kind == QR_GUIDE and staff is not None:
        return f"g:{staff.id}"
    raise ValidationError(_l("unknown QR code kind"), field="kind")


def _existing(kind: str, store_id: int | None, staff_id: int | None) -> MemberQrCode | None:
    return db.session.execute(
        select(MemberQrCode).where(
            MemberQrCode.kind == kind,
            MemberQrCode.store_id.is_(None)
            if store_id is None
            else (MemberQrCode.store_id == store_id),
            MemberQrCode.staff_id.is_(None)
            if staff_id is None
            else (MemberQrCode.staff_id == staff_id),
        )
    ).scalar_one_or_none()


def ensure_store_qr(*, store_id: int) -> MemberQrCode:
    """The store's permanent QR code, created through the gateway when it has none."""
    store = db.session.get(Store, store_id)
    if store is None or store.brand_id != require_brand_id():
        raise NotFound(_l("no such store"))
    return _ensure(QR_STORE, store.id, None, scene_for(kind=QR_STORE, store=store))


def ensure_guide_qr(*, staff_id: int) -> MemberQrCode:
    """The guide's permanent QR code (it carries the guide's store too)."""
    staff = db.session.get(Staff, staff_id)
    if staff is None or staff.brand_id != require_brand_id() or staff.role != "guide":
        raise NotFound(_l("no such guide"))
    return _ensure(QR_GUIDE, staff.store_id, staff.id, scene_for(kind=QR_GUIDE, staff=staff))


def guide_qr_of(*, staff_id: int) -> MemberQrCode | None:
    """The guide's QR code, if it was created."""
    return db.session.execute(
        select(MemberQrCode)
        .where(MemberQrCode.kind == QR_GUIDE, MemberQrCode.staff_id == staff_id)
        .order_by(MemberQrCode.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _ensure(kind: str, store_id: int | None, staff_id: int | None, scene: str) -> MemberQrCode:
    found = _existing(kind, store_id, staff_id)
    if found is not None:
        return found
    qr = gateway.create_qrcode(require_brand_id(), scene, permanent=True)
    # Two operators clicking at once both get a ticket; the scene is the same, one row wins.
    db.session.execute(
        insert(MemberQrCode)
        .values(
            brand_id=require_brand_id(),
            kind=kind,
            store_id=store_id,
            staff_id=staff_id,
            scene=scene,
            ticket=qr["ticket"],
            url=qr.get("url") or gateway.qrcode_image_url(qr["ticket"]),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )
    return db.session.execute(select(MemberQrCode).where(MemberQrCode.scene == scene)).scalar_one()


def ensure_all(*, store_id: int | None = None) -> int:
    """Create the missing codes of every active store and guide (or of one store's only)."""
    guides = select(Staff).where(Staff.role == "guide", Staff.active.is_(True))
    if store_id is not None:
        guides = guides.where(Staff.store_id == store_id)
    have = {
        (q.kind, q.store_id, q.staff_id) for q in db.session.execute(select(MemberQrCode)).scalars()
    }
    created = 0
    for store in list_stores(active_only=True, store_id=store_id):
        if (QR_STORE, store.id, None) not in have:
            ensure_store_qr(store_id=store.id)
            created += 1
    for staff in db.session.execute(guides.order_by(Staff.id)).scalars():
        if (QR_GUIDE, staff.store_id, staff.id) not in have:
            ensure_guide_qr(staff_id=staff.id)
            created += 1
    db.session.flush()
    return created


def qr_by_scene(scene: str | None) -> MemberQrCode | None:
    """The brand's own code with this scene, or None (another brand's scene is unknown here)."""
    if not scene or len(scene) > 64:
        return None
    return db.session.execute(
        select(MemberQrCode).where(MemberQrCode.scene == scene)
    ).scalar_one_or_none()


def record_event(
    *, qr: MemberQrCode, kind: str, openid: str, member_id: int | None = None
) -> MemberQrEvent:
    """Count a scan, a follow or an activation for a code."""
    if kind not in (EV_SCAN, EV_FOLLOW, EV_ACTIVATION):
        raise ValidationError(_l("unknown QR event"), field="kind")
    row = MemberQrEvent(qr_id=qr.id, kind=kind, openid=openid, member_id=member_id)
    db.session.add(row)
    db.session.flush()
    return row


def last_scanned(*, openid: str, now: dt.datetime | None = None) -> MemberQrCode | None:
    """The code this WeChat user scanned last (within the attribution window), if any."""
    since = (now or utcnow()) - ATTRIBUTION_WINDOW
    return db.session.execute(
        select(MemberQrCode)
        .join(MemberQrEvent, MemberQrEvent.qr_id == MemberQrCode.id)
        .where(
            MemberQrEvent.openid == openid,
            MemberQrEvent.kind.in_((EV_SCAN, EV_FOLLOW)),
            MemberQrEvent.created_at >= since,
        )
        .order_by(MemberQrEvent.created_at.desc(), MemberQrEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def stats(*, qr_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per code: ``scans`` (every scan, follows included), ``follows`` and ``activations``."""
    out = {qid: {"scans": 0, "follows": 0, "activations": 0} for qid in qr_ids}
    if not qr_ids:
        return out
    rows = db.session.execute(
        select(MemberQrEvent.qr_id, MemberQrEvent.kind, func.count())
        .where(MemberQrEvent.qr_id.in_(qr_ids))
        .group_by(MemberQrEvent.qr_id, MemberQrEvent.kind)
    ).all()
    for qid, kind, n in rows:
        if kind in (EV_SCAN, EV_FOLLOW):
            out[qid]["scans"] += n
        if kind == EV_FOLLOW:
            out[qid]["follows"] += n
        if kind == EV_ACTIVATION:
            out[qid]["activations"] += n
    return out


def visible_codes(*, store_id: int | None = None) -> list[MemberQrCode]:
    """The brand's codes (a store manager's: their store's and its guides'), stores first."""
    stmt = select(MemberQrCode)
    if store_id is not None:
        stmt = stmt.where(MemberQrCode.store_id == store_id)
    return list(
        db.session.execute(
            stmt.order_by(MemberQrCode.kind.desc(), MemberQrCode.store_id, MemberQrCode.id)
        ).scalars()
    )


def label_of(qr: MemberQrCode) -> tuple[str, str]:
    """(name, store name) of the code's store or guide, for pages and posters."""
    store = db.session.get(Store, qr.store_id) if qr.store_id else None
    if qr.kind == QR_GUIDE:
        staff = db.session.get(Staff, qr.staff_id) if qr.staff_id else None
        return (staff.name if staff else "?"), (store.name if store else "")
    return (store.name if store else "?"), (store.name if store else "")


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "qr"


def poster_for(qr: MemberQrCode) -> tuple[str, bytes]:
    """(file name, PNG) of a code's printable poster."""
    brand = db.session.get(Brand, qr.brand_id)
    store = db.session.get(Store, qr.store_id) if qr.store_id else None
    code = store.code if store else ""
    if qr.kind == QR_GUIDE:
        guide = db.session.get(Staff, qr.staff_id)
        title = (str(_l("Guide %(name)s", name=guide.name)), f"Guide #{guide.id}")
        subtitle = (store.name if store else "", code)
        name = f"guide-{guide.id}-{code}.png"
    else:
        title = (store.name, f"Store {code}")
        subtitle = (store.city or "", "")
        name = f"store-{code}.png"
    png = posters.render_poster(
        brand=(brand.name, brand.slug),
        title=title,
        subtitle=subtitle,
        call_to_action=(
            str(_l("Scan with WeChat to join and activate your member card")),
            "Scan with WeChat to join",
        ),
        qr_data=qr.url,
        footer=qr.scene,
    )
    return _filename(name[:-4]) + ".png", png


def simulator_targets(brand: Brand) -> list[dict]:
    """The brand's store and guide codes, for the sandbox phone simulator's scan list."""
    out = []
    for qr in visible_codes():
        name, store_name = label_of(qr)
        store = db.session.get(Store, qr.store_id) if qr.store_id else None
        code = f" ({store.code})" if store else ""
        label = f"{name}{code}" if qr.kind == QR_STORE else f"{name} · {store_name}{code}"
        out.append({"scene": qr.scene, "label": label, "ticket": qr.ticket})
    return out
