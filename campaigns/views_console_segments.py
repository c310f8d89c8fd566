"""Console pages of segments: the list, the builder (with its live count) and recounting.

A store manager works inside the manager's store: the segments of that store only, counts
and saves limited to its members; another store's segment answers 404, as does another
brand's.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from campaigns import segment_builder, segment_services, segments
from campaigns.models import Segment
from campaigns.segment_forms import SegmentForm
from core.auth import roles_required
from core.console import nav_item, save_form
from core.db import db
from core.paging import newest_first, page_from_request
from org.services import list_stores

bp = Blueprint("campaigns_segments", __name__, url_prefix="/console/campaigns/segments")
MANAGERS = ("brand_admin", "store_manager")
PER_PAGE = 30
LIVE_TIMEOUT_MS = 5000  # the live count is exact, or says it took too long
nav_item("campaigns_segments.index", _l("Segments"), group="marketing", roles=MANAGERS, order=20)


def _scope() -> int | None:
    """The store a store manager is limited to; ``None`` for a brand admin."""
    if current_user.is_platform_admin or current_user.role == "brand_admin":
        return None
    if current_user.store_id is None:  # a manager of no store reaches no member
        abort(403)
    return current_user.store_id


def _segment(segment_id: int) -> Segment:
    return segment_services.get(segment_id=segment_id, scope=_scope())


@bp.get("/")
@roles_required(*MANAGERS)
def index():
    scope = _scope()
    page = page_from_request(
        segment_services.visible(scope=scope), order=newest_first(Segment.id), per_page=PER_PAGE
    )
    stores = {s.id: s.name for s in list_stores()}
    return render_template(
        "campaigns/console/segments.html", page=page, stores=stores, scoped=scope
    )


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:segment_id>", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit(segment_id: int | None = None):
    scope = _scope()
    seg = _segment(segment_id) if segment_id else None
    form = SegmentForm(obj=seg)
    if request.method == "GET" and seg is not None:
        form.definition.data = json.dumps(seg.definition, ensure_ascii=False)

    def save():
        if seg is None:
            return segment_services.create_segment(
                name=form.name.data,
                definition=form.definition.data,
                scope=scope,
                created_by=None if current_user.is_platform_admin else current_user.id,
            )
        return segment_services.update_segment(
            segment=seg, name=form.name.data, definition=form.definition.data
        )

    done = save_form(
        form,
        save,
        saved=lambda s: _l("Segment saved: %(n)s members.", n=f"{s.last_count:,}"),
        then=lambda s: url_for(".edit", segment_id=s.id),
    )
    if done.response:
        return done.response
    try:
        tree = json.loads(form.definition.data or "null")
    except ValueError:
        tree = None
    store_name = None
    if (seg.store_id if seg else scope) is not None:
        store_name = {s.id: s.name for s in list_stores()}.get(seg.store_id if seg else scope)
    return render_template(
        "campaigns/console/segment_form.html",
        form=form,
        seg=seg,
        builder={
            **segment_builder.catalogue(),
            "tree": tree if isinstance(tree, dict) else None,
            "labels": segment_builder.labels_of(tree if isinstance(tree, dict) else None),
            "count_url": url_for(".live_count"),
        },
        store_name=store_name,
    ), done.status


@bp.post("/count")
@roles_required(*MANAGERS)
def live_count():
    """The builder's live count: exact, under a statement timeout (JSON in, JSON out)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "definition" not in body:
        return jsonify(
            {"error": {"code": "invalid", "message": _("Send the conditions."), "field": None}}
        ), 400
    try:
        n = segments.count_within(body["definition"], store_id=_scope(), timeout_ms=LIVE_TIMEOUT_MS)
    except segments.CountTimedOut:
        db.session.rollback()
        return jsonify(
            {
                "count": None,
                "timeout": True,
                "message": _("The count took too long; narrow the conditions."),
            }
        )
    db.session.rollback()  # a count writes nothing
    return jsonify({"count": n, "display": f"{n:,}"})


@bp.post("/<int:segment_id>/count")
@roles_required(*MANAGERS)
def recount(segment_id: int):
    seg = _segment(segment_id)
    n = segment_services.refresh_count(segment=seg)
    db.session.commit()
    flash(_("%(name)s: %(n)s members now.", name=seg.name, n=f"{n:,}"), "success")
    return redirect(url_for(".index"))


@bp.post("/<int:segment_id>/delete")
@roles_required(*MANAGERS)
def delete(segment_id: int):
    seg = _segment(segment_id)
    segment_services.delete_segment(segment=seg)
    db.session.commit()
    flash(_("Segment deleted."), "success")
    return redirect(url_for(".index"))
