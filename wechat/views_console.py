"""Console pages for the chatbot: greeting and default reply, keyword replies, custom menu."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from core.auth import roles_required
from core.console import form_error, nav_item
from core.db import db
from core.errors import AppError
from core.paging import Key, page_from_request
from core.tenancy import get_or_404
from org.models import Brand
from wechat import chatbot
from wechat.models import KeywordReply

bp = Blueprint("wechat_console", __name__, url_prefix="/console/wechat")

MENU_BUTTONS, MENU_SUBS = 3, 5
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class RepliesForm(FlaskForm):
    greeting = TextAreaField(_l("Follow greeting"), validators=[Optional()])
    default_reply = TextAreaField(_l("Default reply"), validators=[Optional()])


class KeywordForm(FlaskForm):
    keyword = StringField(_l("Keyword"), validators=[DataRequired(), Length(max=60)])
    match = SelectField(
        _l("Match"),
        choices=[
            ("exact", _l("Whole message equals the keyword")),
            ("contains", _l("Message contains the keyword")),
        ],
    )
    priority = IntegerField(
        _l("Priority (higher first)"),
        default=0,
        validators=[InputRequired(), NumberRange(min=0, max=1000)],
    )
    reply_type = SelectField(
        _l("Reply with"), choices=[("text", _l("Text")), ("news", _l("One article"))]
    )
    text = TextAreaField(_l("Reply text"), validators=[Optional()])
    title = StringField(_l("Article title"), validators=[Optional(), Length(max=64)])
    description = StringField(_l("Article summary"), validators=[Optional(), Length(max=120)])
    url = StringField(_l("Article link"), validators=[Optional(), Length(max=1024)])
    picurl = StringField(_l("Cover image link"), validators=[Optional(), Length(max=1024)])
    starts_at = DateTimeLocalField(_l("Active from"), format=LOCAL_FORMAT, validators=[Optional()])
    ends_at = DateTimeLocalField(_l("Active until"), format=LOCAL_FORMAT, validators=[Optional()])
    active = BooleanField(_l("Active"), default=True)


class EmptyForm(FlaskForm):
    """Only the CSRF token (delete and publish buttons, the menu editor)."""


def _brand() -> Brand:
    return db.session.get(Brand, g.brand_id)


# --- greeting and default reply ------------------------------------------------------------


@bp.route("/replies", methods=["GET", "POST"])
@roles_required("brand_admin")
def replies():
    settings = chatbot.get_settings()
    form = RepliesForm(obj=settings if request.method == "GET" else None)
    status = 200
    if form.validate_on_submit():
        try:
            chatbot.save_replies(
                greeting=form.greeting.data or "", default_reply=form.default_reply.data or ""
            )
            db.session.commit()
            flash(_l("Saved."), "success")
            return redirect(url_for("wechat_console.replies"))
        except AppError as exc:
            db.session.rollback()
            form_error(form, exc)
            status = exc.status
    elif request.method == "POST":
        status = 400
    return render_template("wechat/console/replies.html", form=form), status


# --- keyword replies -----------------------------------------------------------------------


@bp.get("/keywords")
@roles_required("brand_admin")
def keywords():
    # Listed as they are matched: highest priority first, then the oldest rule.
    order = (Key(KeywordReply.priority, descending=True), Key(KeywordReply.id))
    page = page_from_request(chatbot.list_keywords(), order=order, per_page=30)
    return render_template(
        "wechat/console/keywords.html", page=page, form=EmptyForm(), now=dt.datetime.now(dt.UTC)
    )


def _aware(value: dt.datetime | None, brand: Brand) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=brand.tz)


def _keyword_fields(form: KeywordForm, brand: Brand) -> dict:
    return dict(
        keyword=form.keyword.data,
        match=form.match.data,
        priority=form.priority.data,
        reply_type=form.reply_type.data,
        text=form.text.data or "",
        title=form.title.data or "",
        description=form.description.data or "",
        url=form.url.data or "",
        picurl=form.picurl.data or "",
        starts_at=_aware(form.starts_at.data, brand),
        ends_at=_aware(form.ends_at.data, brand),
        active=form.active.data,
    )


def _keyword_page(rule: KeywordReply | None):
    brand = _brand()
    form = KeywordForm(obj=rule if request.method == "GET" else None)
    if request.method == "GET" and rule is not None:
        for name in ("starts_at", "ends_at"):
            value = getattr(rule, name)
            getattr(form, name).data = (
                value.astimezone(brand.tz).replace(tzinfo=None) if value else None
            )
    status = 200
    if form.validate_on_submit():
        try:
            if rule is None:
                chatbot.create_keyword(**_keyword_fields(form, brand))
            else:
                chatbot.update_keyword(rule=rule, **_keyword_fields(form, brand))
            db.session.commit()
            flash(_l("Saved."), "success")
            return redirect(url_for("wechat_console.keywords"))
        except AppError as exc:
            db.session.rollback()
            form_error(form, exc)
            status = exc.status
    elif request.method == "POST":
        status = 400
    return render_template(
        "wechat/console/keyword_form.html", form=form, rule=rule, tz=brand.timezone
    ), status


@bp.route("/keywords/new", methods=["GET", "POST"])
@roles_required("brand_admin")
def keyword_new():
    return _keyword_page(None)


@bp.route("/keywords/<int:rule_id>", methods=["GET", "POST"])
@roles_required("brand_admin")
def keyword_edit(rule_id: int):
    return _keyword_page(get_or_404(KeywordReply, rule_id))


@bp.post("/keywords/<int:rule_id>/delete")
@roles_required("brand_admin")
def keyword_delete(rule_id: int):
    rule = get_or_404(KeywordReply, rule_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    chatbot.delete_keyword(rule=rule)
    db.session.commit()
    flash(_l("Keyword reply deleted."), "success")
    return redirect(url_for("wechat_console.keywords"))


# --- custom menu ---------------------------------------------------------------------------


def _rows_from_menu(menu: dict | None) -> list[dict]:
    """The editor's fixed rows (3 buttons x 5 sub-items) filled from WeChat's menu JSON."""
    groups = []
    buttons = (menu or {}).get("button") or []
    for i in range(MENU_BUTTONS):
        b = buttons[i] if i < len(buttons) else {}
        subs = b.get("sub_button") or []
        groups.append(
            {
                "name": b.get("name", ""),
                "type": "group" if subs else b.get("type", "click"),
                "value": b.get("key") or b.get("url") or "",
                "subs": [
                    {
                        "name": s.get("name", ""),
                        "type": s.get("type", "click"),
                        "value": s.get("key") or s.get("url") or "",
                    }
                    for s in (subs[j] if j < len(subs) else {} for j in range(MENU_SUBS))
                ],
            }
        )
    return groups


def _item(name: str, kind: str, value: str) -> dict:
    item = {"name": name, "type": kind}
    item["url" if kind == "view" else "key"] = value
    return item


def _menu_from_form(form) -> tuple[dict, list[dict]]:
    """WeChat's menu JSON from the editor's rows (empty rows skipped), and the rows echoed."""
    buttons, groups = [], []
    for i in range(MENU_BUTTONS):

        def val(field: str, i=i) -> str:
            return (form.get(f"b{i}_{field}") or "").strip()

        subs_rows = [
            {k: (form.get(f"b{i}_s{j}_{k}") or "").strip() for k in ("name", "type", "value")}
            for j in range(MENU_SUBS)
        ]
        groups.append(
            {"name": val("name"), "type": val("type"), "value": val("value"), "subs": subs_rows}
        )
        subs = [
            _item(s["name"], s["type"], s["value"]) for s in subs_rows if s["name"] or s["value"]
        ]
        if not (val("name") or val("value") or subs):
            continue
        if subs:
            buttons.append({"name": val("name"), "sub_button": subs})
        else:
            buttons.append(_item(val("name"), val("type"), val("value")))
    return {"button": buttons}, groups


@bp.route("/menu", methods=["GET", "POST"])
@roles_required("brand_admin")
def menu():
    settings = chatbot.get_settings()
    form = EmptyForm()
    groups = _rows_from_menu(settings.menu)
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        menu_json, groups = _menu_from_form(request.form)
        try:
            chatbot.save_menu(menu=menu_json)
            db.session.commit()
            flash(_l("Menu saved. Publish it to show it in WeChat."), "success")
            return redirect(url_for("wechat_console.menu"))
        except AppError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            status = exc.status
    return render_template(
        "wechat/console/menu.html", form=form, groups=groups, settings=settings
    ), status


@bp.post("/menu/publish")
@roles_required("brand_admin")
def menu_publish():
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        chatbot.publish_menu(brand_id=g.brand_id)
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("wechat_console.menu"))
    db.session.commit()
    flash(_l("Publishing the menu to WeChat; this page shows the outcome."), "success")
    return redirect(url_for("wechat_console.menu"))


nav_item(
    "wechat_console.replies", _l("Auto replies"), group="wechat", roles=("brand_admin",), order=75
)
nav_item(
    "wechat_console.keywords",
    _l("Keyword replies"),
    group="wechat",
    roles=("brand_admin",),
    order=76,
)
nav_item("wechat_console.menu", _l("Custom menu"), group="wechat", roles=("brand_admin",), order=77)


def init_app(app: Flask) -> None:
    from wechat import demo  # noqa: F401  (registers the `flask demo` step)

    app.register_blueprint(bp)
