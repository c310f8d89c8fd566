"""Store and guide QR codes: creation through the gateway, scene lookup, statistics, their
printable posters and the list the sandbox phone simulator scans from.

Scenes are ``s:<store code>`` and ``g:<staff id>`` (WeChat allows 1-64 characters). A scene
is never trusted on its own: it is resolved in the receiving brand's own QR table, so a
scene of another brand, or one typed by hand, attributes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert

from core.db import UTCDateTime, db, utcnow
from core.errors import NotFound, ValidationError
from core.paging import Key
from core.tenancy import require_brand_id
from members.activation import posters
from members.identities import check_identity
from members.models import (
    EV_ACTIVATION,
    EV_FOLLOW,
    EV_SCAN,
    QR_GUIDE,
    QR_STORE,
    MemberQrCode,
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


@dataclasses.dataclass(frozen=True, slots=True)
class ScannedCode:
    """What an activation needs of the code its consumer scanned last."""

    id: int
    brand_id: int
    store_id: int | None
    staff_id: int | None
    scene: str


_BY_SCENE = text(
    "SELECT id, brand_id, store_id, staff_id, scene FROM member_qr_code"
    " WHERE brand_id = :brand_id AND scene = :scene"
).bindparams(bindparam("brand_id", type_=BigInteger), bindparam("scene", type_=String))


def qr_by_scene(scene: str | None) -> ScannedCode | None:
    """The brand's own code with this scene, or None (another brand's scene is unknown here):
    what a scan needs of it, read by one prepared statement (every scan of a code asks)."""
    if not scene or len(scene) > 64:
        return None
    row = db.session.execute(_BY_SCENE, {"brand_id": require_brand_id(), "scene": scene}).first()
    return ScannedCode(*row) if row is not None else None


# A scan in one statement: the brand's code of the scene, the WeChat user's member when they
# hold the card (as ``identities.card_holder_id`` reads it), and for a known code the event
# and its counters (as ``record_event`` writes them).
_SCAN = text(
    "WITH q AS (SELECT id, brand_id, store_id, staff_id, scene FROM member_qr_code"
    " WHERE brand_id = :brand_id AND scene = :scene),"
    " h AS (SELECT m.id FROM member_identity i JOIN member m ON m.id = i.member_id"
    " WHERE i.brand_id = :brand_id AND i.kind = 'oa_openid' AND i.value = :holder"
    " AND m.brand_id = :brand_id AND m.activated_at IS NOT NULL),"
    " ev AS (INSERT INTO member_qr_event (brand_id, qr_id, kind, openid, member_id, created_at)"
    " SELECT :brand_id, q.id, :kind, :openid, (SELECT id FROM h), :created_at FROM q"
    " RETURNING qr_id),"
    " c AS (UPDATE member_qr_code SET scans = scans + 1, follows = follows + :follows"
    " WHERE id = (SELECT qr_id FROM ev) AND brand_id = :brand_id)"
    " SELECT q.id, q.brand_id, q.store_id, q.staff_id, q.scene, (SELECT id FROM h) FROM q"
).bindparams(
    bindparam("brand_id", type_=BigInteger),
    bindparam("follows", type_=Integer),
    bindparam("created_at", type_=UTCDateTime),
    *(bindparam(n, type_=String) for n in ("scene", "holder", "kind", "openid")),
)


def count_scan(
    *, scene: str | None, kind: str, openid: str
) -> tuple[ScannedCode | None, int | None]:
    """A scan or follow of the brand's code with this scene, counted: ``qr_by_scene``,
    ``card_holder_id`` of the WeChat user and ``record_event`` in one statement. Returns
    (code, card holder's member id); (None, None) and nothing counted for an unknown scene."""
    if kind not in (EV_SCAN, EV_FOLLOW):
        raise ValidationError(_l("unknown QR event"), field="kind")
    if not scene or len(scene) > 64:
        return None, None
    try:
        holder = check_identity("oa_openid", openid)
    except ValidationError:
        if qr_by_scene(scene) is None:
            return None, None
        raise
    db.session.flush()
    row = db.session.execute(
        _SCAN,
        {
            "brand_id": require_brand_id(),
            "scene": scene,
            "holder": holder,
            "kind": kind,
            "openid": openid,
            "follows": int(kind == EV_FOLLOW),
            "created_at": utcnow(),
        },
    ).first()
    return (ScannedCode(*row[:5]), row[5]) if row is not None else (None, None)


_RECORD_EVENT = text(
    "WITH ev AS ("
    " INSERT INTO member_qr_event (brand_id, qr_id, kind, openid, member_id, created_at)"
    " VALUES (:brand_id, :qr_id, :kind, :openid, :member_id, :created_at) RETURNING id)"
    " UPDATE member_qr_code SET scans = scans + :scans, follows = follows + :follows,"
    " activations = activations + :activations"
    " WHERE id = :qr_id AND brand_id = :brand_id"
    " RETURNING (SELECT id FROM ev)"
).bindparams(
    bindparam("brand_id", type_=BigInteger),
    bindparam("qr_id", type_=BigInteger),
    bindparam("member_id", type_=BigInteger),
    bindparam("kind", type_=String),
    bindparam("openid", type_=String),
    bindparam("created_at", type_=UTCDateTime),
)


def record_event(
    *, qr: MemberQrCode | ScannedCode, kind: str, openid: str, member_id: int | None = None
) -> int:
    """Count a scan, a follow or an activation for a code; returns the event's id."""
    if kind not in (EV_SCAN, EV_FOLLOW, EV_ACTIVATION):
        raise ValidationError(_l("unknown QR event"), field="kind")
    # The event and the code's counters in one statement, in the event's own transaction and
    # in the database (n = n + 1): concurrent scans of one code each add theirs, and a
    # rolled-back event adds nothing.
    db.session.flush()
    event_id = db.session.execute(
        _RECORD_EVENT,
        {
            "brand_id": qr.brand_id,
            "qr_id": qr.id,
            "kind": kind,
            "openid": openid,
            "member_id": member_id,
            "created_at": utcnow(),
            "scans": int(kind in (EV_SCAN, EV_FOLLOW)),
            "follows": int(kind == EV_FOLLOW),
            "activations": int(kind == EV_ACTIVATION),
        },
    ).scalar_one()
    if isinstance(qr, MemberQrCode):
        db.session.expire(qr, ["scans", "follows", "activations"])
    return event_id


_LAST_SCANNED = text(
    "SELECT q.id, q.brand_id, q.store_id, q.staff_id, q.scene"
    " FROM member_qr_event e JOIN member_qr_code q ON q.id = e.qr_id"
    " WHERE e.brand_id = :brand_id AND q.brand_id = :brand_id AND e.openid = :openid"
    " AND e.kind IN ('scan', 'follow') AND e.created_at >= :since"
    " ORDER BY e.created_at DESC, e.id DESC LIMIT 1"
).bindparams(
    bindparam("brand_id", type_=BigInteger),
    bindparam("openid", type_=String),
    bindparam("since", type_=UTCDateTime),
)


def last_scanned(*, openid: str, now: dt.datetime | None = None) -> ScannedCode | None:
    """The code this WeChat user scanned last (within the attribution window), if any."""
    since = (now or utcnow()) - ATTRIBUTION_WINDOW
    row = db.session.execute(
        _LAST_SCANNED, {"brand_id": require_brand_id(), "openid": openid, "since": since}
    ).first()
    return ScannedCode(*row) if row is not None else None


def stats(*, qr_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per code: ``scans`` (every scan, follows included), ``follows`` and ``activations``,
    read from the codes' counters (one query; no event is counted)."""
    out = {qid: {"scans": 0, "follows": 0, "activations": 0} for qid in qr_ids}
    if not qr_ids:
        return out
    rows = db.session.execute(
        select(
            MemberQrCode.id, MemberQrCode.scans, MemberQrCode.follows, MemberQrCode.activations
        ).where(MemberQrCode.id.in_(qr_ids))
    ).all()
    for qid, scans, follows, activations in rows:
        out[qid] = {"scans": scans, "follows": follows, "activations": activations}
    return out


# The recount of the counters from the events (the migration that added them runs the same).
_RECOUNT = text(
    """
    UPDATE member_qr_code AS q
    SET scans = c.scans, follows = c.follows, activations = c.activations
    FROM (
        SELECT q2.id,
               count(e.id) FILTER (WHERE e.kind IN ('scan', 'follow')) AS scans,
               count(e.id) FILTER (WHERE e.kind = 'follow') AS follows,
               count(e.id) FILTER (WHERE e.kind = 'activation') AS activations
        FROM member_qr_code AS q2
        LEFT JOIN member_qr_event AS e ON e.qr_id = q2.id
        WHERE q2.brand_id = :brand_id
        GROUP BY q2.id
    ) AS c
    WHERE c.id = q.id
      AND (q.scans, q.follows, q.activations)
          IS DISTINCT FROM (c.scans, c.follows, c.activations)
    """
)


def rebuild_stats() -> int:
    """Recount the brand's code counters from its events; how many codes were off.

    Idempotent: a second run finds nothing to fix. The codes are locked first, so an event
    being recorded either committed before the recount (and is counted) or waits for it
    and then adds its one to the recounted total: the result is exact even while scans
    come in.
    """
    brand_id = require_brand_id()
    db.session.execute(
        select(MemberQrCode.id)
        .where(MemberQrCode.brand_id == brand_id)
        .order_by(MemberQrCode.id)
        .with_for_update()
    ).all()
    result = db.session.execute(_RECOUNT, {"brand_id": brand_id})
    db.session.expire_all()
    return result.rowcount


KINDS = (QR_STORE, QR_GUIDE)


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def code_rows(*, store_id: int | None = None, kind: str | None = None, q: str = "") -> Select:
    """The brand's codes with their labels, rows of (code, name, store name), in one statement.

    The store and the guide come joined, never looked up per code. ``store_id`` narrows to
    a store's code and its guides' (a store manager's list); ``kind`` to stores or guides;
    ``q`` to codes whose store name or code, or guide name, contains it.
    """
    name = case(
        (MemberQrCode.kind == QR_GUIDE, func.coalesce(Staff.name, "?")),
        else_=func.coalesce(Store.name, "?"),
    )
    stmt = (
        select(MemberQrCode, name.label("name"), func.coalesce(Store.name, "").label("store"))
        .outerjoin(Store, Store.id == MemberQrCode.store_id)
        .outerjoin(Staff, Staff.id == MemberQrCode.staff_id)
    )
    if store_id is not None:
        stmt = stmt.where(MemberQrCode.store_id == store_id)
    if kind in KINDS:
        stmt = stmt.where(MemberQrCode.kind == kind)
    q = (q or "").strip()[:64]
    if q:
        like = _like(q)
        stmt = stmt.where(
            or_(Store.name.ilike(like), Store.code.ilike(like), Staff.name.ilike(like))
        )
    return stmt


# Stores first, then guides, each by store and id: the keyset order of ``code_rows``.
CODE_ORDER = (
    Key(MemberQrCode.kind, descending=True),
    Key(func.coalesce(MemberQrCode.store_id, 0)),
    Key(MemberQrCode.id),
)


def visible_codes(*, store_id: int | None = None, kind: str | None = None) -> list[MemberQrCode]:
    """The brand's codes (a store manager's: their store's and its guides'), stores first;
    of one ``kind`` only when given."""
    stmt = select(MemberQrCode)
    if store_id is not None:
        stmt = stmt.where(MemberQrCode.store_id == store_id)
    if kind is not None:
        stmt = stmt.where(MemberQrCode.kind == kind)
    return list(
        db.session.execute(
            stmt.order_by(MemberQrCode.kind.desc(), MemberQrCode.store_id, MemberQrCode.id)
        ).scalars()
    )


def _by_id(model, ids: set[int]) -> dict:
    if not ids:
        return {}
    return {
        row.id: row for row in db.session.execute(select(model).where(model.id.in_(ids))).scalars()
    }


def _labels(codes: list[MemberQrCode]) -> tuple[dict[int, Store], dict[int, Staff]]:
    """The stores and the staff of ``codes`` by id: one query each, however many codes."""
    return (
        _by_id(Store, {qr.store_id for qr in codes if qr.store_id}),
        _by_id(Staff, {qr.staff_id for qr in codes if qr.staff_id}),
    )


def _label(qr: MemberQrCode, store: Store | None, staff: Staff | None) -> tuple[str, str]:
    if qr.kind == QR_GUIDE:
        return (staff.name if staff else "?"), (store.name if store else "")
    return (store.name if store else "?"), (store.name if store else "")


def label_of(qr: MemberQrCode) -> tuple[str, str]:
    """(name, store name) of the code's store or guide, for pages and posters (one code: a
    list reads its labels joined, ``code_rows``)."""
    store = db.session.get(Store, qr.store_id) if qr.store_id else None
    staff = db.session.get(Staff, qr.staff_id) if qr.staff_id else None
    return _label(qr, store, staff)


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "qr"


def poster_for(qr: MemberQrCode) -> tuple[str, bytes]:
    """(file name, PNG) of a code's printable poster."""
    store = db.session.get(Store, qr.store_id) if qr.store_id else None
    staff = db.session.get(Staff, qr.staff_id) if qr.staff_id else None
    return _poster(qr, store, staff)


def posters_of(codes: list[MemberQrCode]) -> list[tuple[str, bytes]]:
    """(file name, PNG) of each code's poster, their stores and guides read at once."""
    stores, staff = _labels(codes)
    return [_poster(qr, stores.get(qr.store_id), staff.get(qr.staff_id)) for qr in codes]


def _poster(qr: MemberQrCode, store: Store | None, guide: Staff | None) -> tuple[str, bytes]:
    brand = db.session.get(Brand, qr.brand_id)
    code = store.code if store else ""
    if qr.kind == QR_GUIDE:
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
    codes = visible_codes()
    stores, staff = _labels(codes)
    out = []
    for qr in codes:
        store = stores.get(qr.store_id)
        name, store_name = _label(qr, store, staff.get(qr.staff_id))
        code = f" ({store.code})" if store else ""
        label = f"{name}{code}" if qr.kind == QR_STORE else f"{name} · {store_name}{code}"
        out.append({"scene": qr.scene, "label": label, "ticket": qr.ticket})
    return out
