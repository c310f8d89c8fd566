"""Console pages of the store and guide QR codes: list with statistics, posters, and the zip
of every store poster (an export job).

Brand admins see every code; a store manager sees the codes of their store and its guides; a
guide sees only their own code (from the workbench, ``workbench.my_qr``).
"""

from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core import exports_view
from core.auth import roles_required
from core.console import brand_time, nav_item
from core.db import db
from core.errors import AppError
from core.paging import page_from_request
from core.tenancy import get_or_404
from members.activation import poster_export, qrcodes
from members.forms import EmptyForm
from members.models import QR_GUIDE, QR_STORE, MemberQrCode
from wechat import gateway

bp = Blueprint("members_qr", __name__, url_prefix="/console/members/qrcodes")
ROLES = ("brand_admin", "store_manager")
PER_PAGE = 50
nav_item("members_qr.index", _l("QR codes"), group="marketing", roles=ROLES, order=72)


def _store_scope() -> int | None:
    if current_user.is_platform_admin or current_user.role == "brand_admin":
        return None
    return current_user.store_id or -1


def _visible(qr: MemberQrCode) -> MemberQrCode:
    if not current_user.is_platform_admin and current_user.role == "guide":
        if qr.kind != QR_GUIDE or qr.staff_id != current_user.id:
            abort(404)
        return qr
    scope = _store_scope()
    if scope is not None and qr.store_id != scope:
        abort(404)
    return qr


@bp.get("")
@roles_required(*ROLES)
def index():
    kind = request.args.get("kind", "")
    kind = kind if kind in qrcodes.KINDS else ""
    q = (request.args.get("q") or "").strip()
    page = page_from_request(
        qrcodes.code_rows(store_id=_store_scope(), kind=kind or None, q=q),
        order=qrcodes.CODE_ORDER,
        per_page=PER_PAGE,
    )
    return render_template(
        "members/console/qrcodes.html",
        page=page,
        kind=kind,
        q=q,
        form=EmptyForm(),
        QR_GUIDE=QR_GUIDE,
        QR_STORE=QR_STORE,
        recent=exports_view.recent_items(kind=poster_export.KIND),
    )


@bp.post("/create")
@roles_required(*ROLES)
def create_missing():
    if not EmptyForm().validate_on_submit():
        abort(400)
    scope = _store_scope()
    try:
        n = qrcodes.ensure_all(store_id=scope)
    except gateway.WeChatError as exc:
        db.session.rollback()
        flash(_l("WeChat refused to create the QR codes: %(error)s", error=str(exc)), "error")
        return redirect(url_for(".index"))
    db.session.commit()
    flash(_l("%(n)d QR codes created.", n=n), "success")
    return redirect(url_for(".index"))


@bp.get("/<int:qr_id>/poster.png")
@roles_required(*ROLES, "guide")
def poster(qr_id: int):
    qr = _visible(get_or_404(MemberQrCode, qr_id))
    name, png = qrcodes.poster_for(qr)
    return Response(
        png,
        mimetype="image/png",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/posters.zip")
@roles_required(*ROLES)
def posters_zip():
    """Queue the zip of the store posters in the user's scope; the page lists its progress
    and offers the download."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    scope = _store_scope()
    if not qrcodes.visible_codes(store_id=scope, kind=QR_STORE):
        flash(_l("No store QR codes yet: create them first."), "error")
        return redirect(url_for(".index"))
    staff = current_user._get_current_object()
    stamp = brand_time(dt.datetime.now(dt.UTC), "%Y%m%d-%H%M")
    try:
        poster_export.request_posters(
            store_id=scope, staff=staff, filename=f"store-posters-{stamp}.zip"
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_l("The posters are being drawn. The zip appears below when ready."), "success")
    return redirect(url_for(".index") + "#recent-exports")
