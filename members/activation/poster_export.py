"""All store posters of a brand (or of a store manager's store) as one zip, written by an
export job: a brand of thousands of stores would take minutes of drawing in a request."""

from __future__ import annotations

import zipfile

from flask_babel import lazy_gettext as _l

from core import audit, exports
from members.activation import qrcodes
from members.models import QR_STORE

KIND = "store_posters"
CHUNK = 200  # posters drawn (and their stores read) per step


def write_store_posters(export, out, progress) -> int:
    """The zip of the store codes' posters in scope; PNGs are stored, not compressed again."""
    codes = qrcodes.visible_codes(store_id=export.params.get("store_id"), kind=QR_STORE)
    progress(0, len(codes))
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for start in range(0, len(codes), CHUNK):
            chunk = codes[start : start + CHUNK]
            for name, png in qrcodes.posters_of(chunk):
                zf.writestr(name, png)
            progress(start + len(chunk), len(codes))
    return len(codes)


exports.register_export(
    KIND, label=_l("Store posters"), write=write_store_posters, mimetype="application/zip"
)


def request_posters(*, store_id: int | None, staff, filename: str) -> exports.ExportFile:
    """Queue the zip of the store posters in ``store_id``'s scope (None: every store)."""
    actor = audit.current_actor() or audit.Actor("staff", staff.id, staff.display_name)
    with audit.acting_as(actor):
        return exports.request_export(
            kind=KIND,
            params={"store_id": store_id},
            requested_by=staff.get_id(),
            requested_by_label=staff.display_name,
            filename=filename,
        )
