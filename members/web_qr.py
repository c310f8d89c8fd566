"""Console pages of the store and guide QR codes: list with statistics, posters, zip.

Brand admins see every code; a store manager sees the codes of their store and its guides.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm

from core.auth import roles_required
from core.cli import demo_step
from core.console import nav_item
from core.db import db
from core.tenancy import get_or_404, use_brand
from members import posters, qrcodes
from members.models_qr import QR_GUIDE, QR_STORE, MemberQrCode
from org.models import Brand, Staff, Store
from wechat import gateway

bp = Blueprint("members_qr", __name__, url_prefix="/console/members/qrcodes")
ROLES = ("brand_admin", "store_manager")
nav_item("members_qr.index", _l("QR codes"), roles=ROLES, order=42)


class EmptyForm(FlaskForm):
    pass


def _store_scope() -> int | None:
    if current_user.is_platform_admin or current_user.role == "brand_admin":
        return None
    return current_user.store_id or -1


def _visible(qr: MemberQrCode) -> MemberQrCode:
    scope = _store_scope()
    if scope is not None and qr.store_id != scope:
        abort(404)
    return qr


@bp.get("")
@roles_required(*ROLES)
def index():
    codes = qrcodes.visible_codes(store_id=_store_scope())
    rows = [(qr, *qrcodes.label_of(qr)) for qr in codes]
    stats = qrcodes.stats(qr_ids=[qr.id for qr in codes])
    return render_template(
        "members/center/console_qrcodes.html",
        rows=rows,
        stats=stats,
        form=EmptyForm(),
        QR_GUIDE=QR_GUIDE,
    )


@bp.post("/create")
@roles_required(*ROLES)
def create_missing():
    if not EmptyForm().validate_on_submit():
        abort(400)
    scope = _store_scope()
    try:
        n = qrcodes.ensure_all(store_ids=None if scope is None else [scope])
    except gateway.WeChatError as exc:
        db.session.rollback()
        flash(_l("WeChat refused to create the QR codes: %(error)s", error=str(exc)), "error")
        return redirect(url_for(".index"))
    db.session.commit()
    flash(_l("%(n)d QR codes created.", n=n), "success")
    return redirect(url_for(".index"))


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "qr"


def poster_for(qr: MemberQrCode) -> tuple[str, bytes]:
    """(file name, PNG) of a code's poster."""
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


@bp.get("/<int:qr_id>/poster.png")
@roles_required(*ROLES)
def poster(qr_id: int):
    qr = _visible(get_or_404(MemberQrCode, qr_id))
    name, png = poster_for(qr)
    return Response(
        png,
        mimetype="image/png",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/posters.zip")
@roles_required(*ROLES)
def posters_zip():
    codes = [qr for qr in qrcodes.visible_codes(store_id=_store_scope()) if qr.kind == QR_STORE]
    if not codes:
        flash(_l("No store QR codes yet: create them first."), "error")
        return redirect(url_for(".index"))
    data = posters.zip_files([poster_for(qr) for qr in codes])
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{g.brand_id}-store-posters.zip"'},
    )


def simulator_targets(brand: Brand) -> list[dict]:
    """The brand's store and guide codes, for the sandbox phone simulator's scan list."""
    out = []
    for qr in qrcodes.visible_codes():
        name, store_name = qrcodes.label_of(qr)
        store = db.session.get(Store, qr.store_id) if qr.store_id else None
        code = f" ({store.code})" if store else ""
        label = f"{name}{code}" if qr.kind == QR_STORE else f"{name} · {store_name}{code}"
        out.append({"scene": qr.scene, "label": label, "ticket": qr.ticket})
    return out


@demo_step(35)
def demo_qrcodes() -> list[str]:
    """QR codes for the demo brand's stores and guides (idempotent)."""
    brand = Brand.by_slug("demo")
    if brand is None:
        return ["members: no demo brand, QR codes skipped"]
    with use_brand(brand.id):
        try:
            created = qrcodes.ensure_all()
        except gateway.WeChatError as exc:
            db.session.rollback()
            return [
                f"QR codes: not created ({exc}); start the app and use Console -> QR codes -> "
                "Create missing QR codes"
            ]
        total = len(qrcodes.visible_codes())
    return [
        f"QR codes: {created} created, {total} in all (stores s:<code>, guides g:<id>); "
        "scan them in the phone simulator, posters under /console/members/qrcodes"
    ]
