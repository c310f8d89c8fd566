"""The console shell: login, navigation, dashboard, brand switch, audit log and failed jobs.

Packages add their pages to the console with their own blueprints under ``/console`` and
list them in the sidebar with ``nav_item(endpoint, label, group=..., roles=...)``, ``group``
being one of NAV_GROUPS. The base template (templates/core/base.html) draws the sidebar of
the current role, the breadcrumb (home / group / item / page title) and the flashes.
"""

from __future__ import annotations

import dataclasses
import json
import zoneinfo
from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from core import audit, audit_view, charts, jobs, jobs_view, labels, overview, ratelimit
from core.auth import BRAND_PICKER, has_role, log_in, log_out, roles_required
from core.db import db, utcnow
from core.errors import AppError
from core.paging import CappedCount, capped_count, newest_first, page_from_request
from core.validators import is_mobile, normalize_phone

bp = Blueprint("console", __name__, url_prefix="/console")

_DUMMY_HASH = generate_password_hash("timing-equaliser")
PERIOD_LABELS = {"today": _l("Today"), "7d": _l("Last 7 days"), "30d": _l("Last 30 days")}


# The sidebar's groups, in the order operators read them. Packages put their pages into one
# of these; a later package (shop, guides, games, campaigns) adds its group here once.
NAV_GROUPS: dict[str, object] = {
    "overview": _l("Overview"),
    "members": _l("Members"),
    "points": _l("Points"),
    "coupons": _l("Coupons"),
    "shop": _l("Shop"),
    "distribution": _l("Guide distribution"),
    "games": _l("Games"),
    "marketing": _l("Marketing"),
    "stores": _l("Stores & guides"),
    "wechat": _l("Official account"),
    "settings": _l("Settings & logs"),
}


@dataclasses.dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object
    roles: tuple[str, ...]
    order: int
    group: str


@dataclasses.dataclass(frozen=True)
class NavGroup:
    key: str
    label: object
    items: tuple[NavItem, ...]


NAV: list[NavItem] = []
_AUTHENTICATORS: list[Callable] = []


def nav_item(endpoint: str, label, *, group: str, roles: tuple[str, ...], order: int = 50) -> None:
    """Show a page in the sidebar's ``group`` (a key of NAV_GROUPS) to the given roles."""
    if group not in NAV_GROUPS:
        raise ValueError(f"unknown console navigation group {group!r}")
    if any(n.endpoint == endpoint for n in NAV):
        return
    NAV.append(NavItem(endpoint, label, roles, order, group))
    NAV.sort(key=lambda n: n.order)


def nav_groups(items: list[NavItem]) -> list[NavGroup]:
    """The given items under their groups, groups in NAV_GROUPS order, empty groups left out."""
    groups = []
    for key, label in NAV_GROUPS.items():
        members = tuple(n for n in items if n.group == key)
        if members:
            groups.append(NavGroup(key, label, members))
    return groups


def current_nav_item(items: list[NavItem]) -> NavItem | None:
    """The sidebar item this request belongs to: its own page, else the item whose URL is the
    longest prefix of this path (a store's edit page belongs to 门店)."""
    if request.url_rule is None:
        return None
    for n in items:
        if n.endpoint == request.endpoint:
            return n
    best, best_len = None, 0
    path = request.path.rstrip("/") + "/"
    for n in items:
        prefix = url_for(n.endpoint).rstrip("/") + "/"
        if prefix != "/console/" and path.startswith(prefix) and len(prefix) > best_len:
            best, best_len = n, len(prefix)
    return best


def form_error(form, exc) -> None:
    """Show a domain error (core.errors.AppError) on its form field, or as a flash message."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = list(field.errors) + [exc.message]
    else:
        flash(exc.message, "error")


@dataclasses.dataclass
class FormOutcome:
    """What ``save_form`` did: a redirect to return, or the status to render the form with."""

    response: object | None = None
    status: int = 200


def save_form(form, action: Callable[[], object], *, saved, then: Callable[[object], str]):
    """The tail every console form shares: validate, run one service, commit, flash, redirect.

    ``action`` calls the service and returns its result; ``then(result)`` gives the URL to go
    to. ``saved`` is the message to flash, or ``saved(result)`` gives it (a count, a name). A
    domain error rolls back and lands on its form field with the error's status; an invalid
    POST renders with 400; a GET renders with 200.
    """
    if form.validate_on_submit():
        try:
            result = action()
            db.session.commit()
        except AppError as exc:
            db.session.rollback()
            form_error(form, exc)
            return FormOutcome(status=exc.status)
        flash(saved(result) if callable(saved) else saved, "success")
        return FormOutcome(response=redirect(then(result)))
    return FormOutcome(status=400 if request.method == "POST" else 200)


def register_authenticator(fn: Callable) -> None:
    """``fn(brand_slug, account)`` returns a console user (or None) to check a password on."""
    _AUTHENTICATORS.append(fn)


@bp.app_context_processor
def _console_globals():
    if not current_user or not getattr(current_user, "is_authenticated", False):
        return {"nav_items": [], "nav_groups": [], "nav_current": None, "has_role": has_role}
    items = [n for n in NAV if has_role(*n.roles)]
    return {
        "nav_items": items,
        "nav_groups": nav_groups(items),
        "nav_current": current_nav_item(items),
        "nav_group_label": NAV_GROUPS.get,
        "has_role": has_role,
    }


bp.add_app_template_global(charts.render, "chart")


@bp.app_template_filter("readable_json")
def readable_json(value) -> str:
    """JSON for people: Chinese stays readable (autoescaping still applies)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


bp.add_app_template_filter(labels.label, "label")
bp.add_app_template_filter(audit_view.mask_phones, "mask_phones")


@bp.app_template_filter("brand_time")
def brand_time(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp shown in the current brand's time zone (g.brand_tz)."""
    if value is None:
        return ""
    tz = zoneinfo.ZoneInfo(g.get("brand_tz") or "Asia/Shanghai")
    return value.astimezone(tz).strftime(fmt)


class LoginForm(FlaskForm):
    brand = StringField(_l("Brand code"), validators=[Optional(), Length(max=40)])
    account = StringField(_l("Phone or username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


def _find_user(brand_slug: str, account: str):
    for fn in _AUTHENTICATORS:
        user = fn(brand_slug, account)
        if user is not None:
            return user
    return None


def login_account_key(account: str) -> str:
    """The account as the lockout counts it: a phone number in its 11-digit form however it
    was typed (+86, 0086, spaces, dashes, full-width digits), anything else case-folded."""
    phone = normalize_phone(account)
    return phone if is_mobile(phone) else account.strip().casefold()


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    retry_after = None
    if form.validate_on_submit():
        brand_slug = (form.brand.data or "").strip().lower()
        account = form.account.data.strip()
        ident = f"{brand_slug}:{login_account_key(account)}"
        # Failures from one address are a rate per brand, not a lock: one store's mistyping
        # slows that brand's logins from that network for a minute, never other brands'.
        ip_ident = f"{brand_slug}:{request.remote_addr or '-'}"
        cfg = current_app.config
        limit, window = cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_LOCK_SECONDS"]
        ip_limit, ip_window = cfg["LOGIN_IP_FAILURES_PER_MINUTE"], 60
        if ratelimit.count(None, "login-fail", ident) >= limit:
            retry_after = window
        elif ratelimit.count(None, "login-fail-ip", ip_ident) >= ip_limit:
            retry_after = ip_window
        if retry_after is not None:
            form.password.errors.append(
                _l(
                    "Too many failed attempts. Try again in %(minutes)d minutes.",
                    minutes=max(1, retry_after // 60),
                )
            )
            status = 429
        else:
            user = _find_user(brand_slug, account)
            if (
                user is not None
                and getattr(user, "active", True)
                and user.check_password(form.password.data)
            ):
                ratelimit.clear(None, "login-fail", ident)
                nxt = _safe_next()
                log_in(user)
                if user.is_platform_admin:
                    return redirect(url_for(BRAND_PICKER))
                return redirect(nxt or url_for("console.dashboard"))
            if user is None:
                check_password_hash(_DUMMY_HASH, form.password.data)
            ratelimit.hit(None, "login-fail", ident, limit=limit, window=window)
            ratelimit.hit(None, "login-fail-ip", ip_ident, limit=ip_limit, window=ip_window)
            form.password.errors.append(_l("Wrong brand code, account or password."))
            status = 401
    elif request.method == "POST":
        status = 400
    response = make_response(render_template("core/login.html", form=form), status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _safe_next() -> str | None:
    """``next`` only when it is a plain path inside the console."""
    nxt = request.args.get("next", "")
    if (
        nxt.startswith("/console")
        and not nxt.startswith("//")
        and "\\" not in nxt
        and not any(ord(c) < 32 or ord(c) == 127 for c in nxt)
        and len(nxt) <= 2000
    ):
        return nxt
    return None


@bp.post("/logout")
def logout():
    log_out()
    return redirect(url_for("console.login"))


@bp.get("/")
@roles_required("brand_admin", "store_manager", "guide")
def dashboard():
    key = request.args.get("period", "7d")
    if key not in overview.PERIODS:
        key = "7d"
    tz = zoneinfo.ZoneInfo(g.get("brand_tz") or "Asia/Shanghai")
    period = overview.make_period(key, now=utcnow(), tz=tz)
    brand_wide = current_user.is_platform_admin or current_user.role == "brand_admin"
    store_id = None if brand_wide else current_user.store_id
    sections = []
    if brand_wide or store_id is not None:
        sections = overview.build(period=period, scope=overview.Scope(store_id=store_id))
    return render_template(
        "core/dashboard.html",
        sections=sections,
        period=period,
        period_labels=PERIOD_LABELS,
        store_wide=not brand_wide,
    )


@bp.get("/audit")
@roles_required("brand_admin")
def audit_log():
    q = (request.args.get("q") or "").strip()
    stmt = (
        select(audit.AuditLog)
        .where(audit.AuditLog.brand_id == g.brand_id)
        .order_by(audit.AuditLog.id.desc())
    )
    if q:
        # Operators search by the Chinese names they see: match those to the codes too.
        objects = [c for c, name in labels.TABLES.get("audit_object", {}).items() if q in str(name)]
        actions = [c for c, name in labels.TABLES.get("audit_action", {}).items() if q in str(name)]
        stmt = stmt.where(
            or_(
                audit.AuditLog.object_type.contains(q),
                audit.AuditLog.actor_label.contains(q),
                audit.AuditLog.action.contains(q),
                audit.AuditLog.object_type.in_(objects),
                audit.AuditLog.action.in_(actions),
            )
        )
    page = page_from_request(stmt, order=newest_first(audit.AuditLog.id), per_page=30)
    return render_template("core/audit.html", page=page, q=q, view=audit_view)


class RetryForm(FlaskForm):
    pass


@bp.route("/jobs", methods=["GET"])
@roles_required("brand_admin")
def failed_jobs():
    status = request.args.get("status", jobs.FAILED)
    if status not in (jobs.FAILED, jobs.RETRY, jobs.PENDING, jobs.QUEUED, jobs.DONE):
        abort(400)
    stmt = (
        select(jobs.OutboxJob)
        .where(jobs.OutboxJob.status == status, _job_scope())
        .order_by(jobs.OutboxJob.id.desc())
    )
    page = page_from_request(stmt, order=newest_first(jobs.OutboxJob.id), per_page=30)
    return render_template(
        "core/jobs.html",
        page=page,
        status=status,
        form=RetryForm(),
        counts=_job_counts(),
        view=jobs_view,
    )


def _job_scope():
    if current_user.is_platform_admin:
        return or_(jobs.OutboxJob.brand_id == g.brand_id, jobs.OutboxJob.brand_id.is_(None))
    return jobs.OutboxJob.brand_id == g.brand_id


def _job_counts() -> dict[str, CappedCount]:
    """Jobs per status for the tabs, each count capped (a brand's done jobs run to millions)."""
    return {
        status: capped_count(
            select(jobs.OutboxJob.id).where(jobs.OutboxJob.status == status, _job_scope())
        )
        for status in (jobs.FAILED, jobs.RETRY, jobs.PENDING, jobs.QUEUED, jobs.DONE)
    }


@bp.post("/jobs/<int:job_id>/retry")
@roles_required("brand_admin")
def retry_job(job_id: int):
    form = RetryForm()
    if not form.validate_on_submit():
        abort(400)
    row = db.session.execute(
        select(jobs.OutboxJob).where(jobs.OutboxJob.id == job_id, _job_scope())
    ).scalar_one_or_none()
    if row is None:
        abort(404)
    if not jobs.retry_failed(row.id):
        flash(_l("Only failed jobs can be retried."), "error")
        return redirect(url_for("console.failed_jobs"))
    audit.record(action="retry", object_type="outbox_job", object_id=row.id, brand_id=row.brand_id)
    db.session.commit()
    flash(_l("Job sent again."), "success")
    return redirect(url_for("console.failed_jobs"))


nav_item(
    "console.dashboard",
    _l("Dashboard"),
    group="overview",
    roles=("brand_admin", "store_manager", "guide"),
    order=0,
)
nav_item("console.audit_log", _l("Audit log"), group="settings", roles=("brand_admin",), order=90)
nav_item("console.failed_jobs", _l("Jobs"), group="settings", roles=("brand_admin",), order=95)
