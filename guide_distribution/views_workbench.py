"""The guide's workbench pages of guide distribution (phone-first, opened in WeChat):
materials to copy, tasks from HQ with the customers to send them to, customers bound to me,
orders credited to me, performance and target, the leaderboards of my store and region.

A guide sees their own data; a store manager their store's; another guide's task, customer
or order answers 404 (tasks are given to guides: anyone else finds none)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core import storage
from core.api import MAX_ID
from core.auth import roles_required
from core.db import db, utcnow
from core.errors import AppError
from core.formfields import fen_to_yuan
from core.paging import newest_first, page_from_request
from core.validators import mask_phone
from guide_distribution import leaderboard, queries, targets, tasks
from guide_distribution.models import CustomerBinding, GuideTask, Material, OrderAttribution
from members.forms import EmptyForm
from members.models import Member
from shop import numbers
from shop.models import Product

bp = Blueprint("guide_workbench", __name__, url_prefix="/console/workbench")
ROLES = ("guide", "store_manager", "brand_admin")
PER_PAGE = 20


@bp.url_value_preprocessor
def _ids_in_range(_endpoint, values):
    if any(isinstance(v, int) and v > MAX_ID for v in (values or {}).values()):
        abort(404)


@bp.app_template_filter("wb_yuan")
def _yuan(fen) -> str:
    return "¥" + fen_to_yuan(fen)


def _viewer() -> queries.Viewer:
    return queries.Viewer.of(current_user)


# --- materials ------------------------------------------------------------------------------


@bp.get("/materials")
@roles_required(*ROLES)
def materials():
    page = page_from_request(
        queries.materials(active_only=True), order=newest_first(Material.id), per_page=PER_PAGE
    )
    return render_template(
        "guide_distribution/workbench/materials.html", page=page, file_url=storage.url
    )


# --- tasks ----------------------------------------------------------------------------------


@bp.get("/tasks", endpoint="tasks")
@roles_required(*ROLES)
def tasks_list():
    page = page_from_request(
        queries.tasks_of_guide(current_user.id), order=newest_first(GuideTask.id), per_page=PER_PAGE
    )
    return render_template("guide_distribution/workbench/tasks.html", page=page, now=utcnow())


@bp.get("/tasks/<int:task_id>")
@roles_required(*ROLES)
def task(task_id: int):
    return _render_task(task_id)


def _render_task(task_id: int, status: int = 200):
    task_row, mine = _assignment_or_404(task_id)
    page = page_from_request(
        tasks.customers_of(task=task_row, guide_id=current_user.id),
        order=newest_first(CustomerBinding.id),
        per_page=PER_PAGE,
    )
    product = db.session.get(Product, task_row.product_id) if task_row.product_id else None
    return render_template(
        "guide_distribution/workbench/task.html",
        task=task_row,
        mine=mine,
        page=page,
        members={
            m.id: m
            for m in db.session.query(Member).filter(
                Member.id.in_([b.member_id for b, _s in page.items])
            )
        },
        masked=lambda m: mask_phone(m.phone) if m and m.phone else "",
        product=product,
        file_url=storage.url,
        now=utcnow(),
        form=EmptyForm(),
    ), status


def _assignment_or_404(task_id: int):
    try:
        return tasks.assignment(task_id=task_id, guide_id=current_user.id)
    except AppError:
        abort(404)


@bp.post("/tasks/<int:task_id>/sent/<int:member_id>")
@roles_required(*ROLES)
def mark_sent(task_id: int, member_id: int):
    _assignment_or_404(task_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        added = tasks.mark_sent(task_id=task_id, guide_id=current_user.id, member_id=member_id)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
        return _render_task(task_id, exc.status)
    if added:
        flash(_l("Marked as sent."), "success")
    return redirect(url_for(".task", task_id=task_id, after=request.form.get("after") or None), 303)


# --- customers and orders -------------------------------------------------------------------


@bp.get("/bound")
@roles_required(*ROLES)
def customers():
    page = page_from_request(
        queries.bound_for(_viewer()), order=newest_first(CustomerBinding.id), per_page=PER_PAGE
    )
    from members.workbench import customer_views_for

    return render_template(
        "guide_distribution/workbench/customers.html",
        page=page,
        last=queries.last_orders([m.id for _b, m in page.items]),
        masked=lambda m: mask_phone(m.phone) if m.phone else "",
        views=customer_views_for(current_user.role),
    )


@bp.get("/orders")
@roles_required(*ROLES)
def orders():
    page = page_from_request(
        queries.orders_for(_viewer()), order=newest_first(OrderAttribution.id), per_page=PER_PAGE
    )
    return render_template("guide_distribution/workbench/orders.html", page=page)


# --- performance, target, leaderboards ------------------------------------------------------


def _month_arg() -> dt.date:
    today = numbers.local_day()
    value = request.args.get("month")
    if value:
        try:
            return targets.parse_month(value)
        except AppError:
            abort(404)
    return targets.month_start(today)


@bp.get("/performance")
@roles_required(*ROLES)
def performance():
    viewer = _viewer()
    today = numbers.local_day()
    this_month = targets.month_start(today)
    last_month = targets.prev_month(this_month)
    who = {"guide_id": viewer.guide_id, "store_id": viewer.store_id}
    if viewer.guide_id is None and viewer.store_id is None and not viewer.whole_brand:
        abort(403)
    figures = [
        (_l("Today"), queries.performance(start=today, end=today + dt.timedelta(days=1), **who)),
        (
            _l("This month"),
            queries.performance(start=this_month, end=targets.next_month(this_month), **who),
        ),
        (_l("Last month"), queries.performance(start=last_month, end=this_month, **who)),
    ]
    target = (
        targets.target_of(guide_id=viewer.guide_id, month=this_month) if viewer.guide_id else None
    )
    month_net = figures[1][1].net_fen
    pct = max(month_net, 0) * 100 // target if target else None
    return render_template(
        "guide_distribution/workbench/performance.html",
        figures=figures,
        target=target,
        pct=pct,
        month=this_month,
    )


@bp.get("/leaderboard", endpoint="leaderboard")
@roles_required(*ROLES)
def leaderboard_page():
    month = _month_arg()
    scope = request.args.get("scope", "store")
    store = getattr(current_user, "store", None)
    if scope == "region" and store is not None and store.region:
        entries = leaderboard.board(month=month, region=store.region)
    elif store is not None:
        scope = "store"
        entries = leaderboard.board(month=month, store_id=store.id)
    else:
        entries = []
    return render_template(
        "guide_distribution/workbench/leaderboard.html",
        entries=entries,
        scope=scope,
        store=store,
        month=month,
        prev=targets.prev_month(month),
        next=targets.next_month(month)
        if month < targets.month_start(numbers.local_day())
        else None,
        me=leaderboard.rank_of(entries, current_user.id),
    )
