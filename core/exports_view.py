"""Console side of exports: "my recent exports" (with live progress), the JSON the page polls,
and the download.

A page that offers an export includes ``core/_exports.html``'s ``recent_exports(items, kind)``
with ``items = exports_view.recent_items(kind=...)``; ``static/console/exports.js`` polls
``/console/exports/mine.json?kind=`` while one of them is waiting or running.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request, send_file, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core import exports
from core.auth import has_role, roles_required
from core.console import brand_time
from core.db import db
from core.labels import label

bp = Blueprint("exports", __name__, url_prefix="/console/exports")
ALL = ("brand_admin", "store_manager", "guide")


def _item(row: exports.ExportFile) -> dict:
    """What the list shows of an export, in the page's language."""
    expired = row.expired()
    ready = row.status == exports.DONE and not expired
    if row.status == exports.FAILED:
        note = str(_l("The export failed. Try again, or ask an administrator to check the jobs."))
    elif expired:
        note = str(_l("Expired"))
    elif ready:
        note = str(_l("Download before %(when)s", when=brand_time(row.expires_at)))
    else:
        note = ""
    return {
        "id": row.id,
        "kind": row.kind,
        "kind_label": label(row.kind, "export_kind"),
        "status": row.status,
        "status_label": str(_l("Expired")) if expired else label(row.status, "export_status"),
        "finished": row.finished or expired,
        "percent": row.percent,
        "rows_done": f"{row.rows_done:,}",
        "rows_expected": f"{row.rows_expected:,}" if row.rows_expected is not None else "",
        "created": brand_time(row.created_at),
        "note": note,
        "download_url": url_for("exports.download", export_id=row.id) if ready else None,
        "failed": row.status == exports.FAILED,
    }


def recent_items(*, kind: str | None = None) -> list[dict]:
    """The signed-in user's recent exports (of ``kind``), ready for the template."""
    rows = exports.recent_exports(requested_by=current_user.get_id(), kind=kind)
    return [_item(r) for r in rows]


@bp.get("/mine.json")
@roles_required(*ALL)
def mine():
    kind = request.args.get("kind") or None
    db.session.expire_all()  # progress is committed by the job on its own connection
    return jsonify(exports=recent_items(kind=kind))


@bp.get("/<int:export_id>/download")
@roles_required(*ALL)
def download(export_id: int):
    row = exports.downloadable(
        export_id=export_id,
        requested_by=current_user.get_id(),
        sees_all=has_role("brand_admin"),
    )
    path = exports.file_path(row) if row is not None else None
    if row is None or path is None:
        abort(404)
    mimetype = exports.KINDS[row.kind].mimetype if row.kind in exports.KINDS else "text/csv"
    exports.record_download(row)
    db.session.commit()
    return send_file(
        path, mimetype=mimetype, as_attachment=True, download_name=row.filename, max_age=0
    )
