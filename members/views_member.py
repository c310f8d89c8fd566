"""Member H5 pages (WeChat's browser, phone first): activation and the member center.

Routes (``<slug>`` is the brand's slug; every page is bound to that one brand):

- ``/m/<slug>/activate``: WeChat OAuth -> phone + SMS code -> consent -> activation;
  ``/activate/oauth`` (OAuth redirect), ``/activate/code`` (send a code, then back to
  ``/activate``: the code step lives in the session, so a reload keeps it), ``/activate/terms``;
- ``/m/<slug>/card/activate``: the jump-activation page of the native WeChat member card;
- ``/m/<slug>/``: the card (tier, card number, figures and links of other packages' slots,
  the rotating till code as Code 128 and QR, store, guide, tier progress); ``/till-code``
  (JSON: the code and both images), ``/profile``, ``/privacy``,
  ``/privacy/data.json``, ``/privacy/delete``.

Other packages add a link to the card page with ``members.center.register_center_slot``.
"""

from __future__ import annotations

import json
import secrets
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from core.audit import Actor, acting_as
from core.db import db, utcnow
from core.errors import AppError, wants_json
from members import barcode, queries, tillcode
from members import session as member_session
from members.activation import card, sms
from members.activation.services import check_phone
from members.center import (
    card_figures,
    center_slots,
    member_blueprint,
    pop_next,
    remember_next,
)
from members.forms import ActivateForm, DeleteForm, PhoneForm, ProfileForm
from members.identities import card_holder_id
from members.models import Member
from members.privacy import data_rights
from members.tiers_tags import tiers
from wechat import gateway

activate_bp = member_blueprint(
    Blueprint("members_activate", __name__, url_prefix="/m/<brand_slug>")
)
center_bp = member_blueprint(Blueprint("members_center", __name__, url_prefix="/m/<brand_slug>"))


def _public(endpoint: str, **values) -> str:
    return current_app.config["PUBLIC_URL"] + url_for(endpoint, **values)


def _problem(message, status: int, *, retry: bool = False) -> tuple[str, int]:
    html = render_template("members/member/activate/problem.html", message=message, retry=retry)
    return html, status


# --- activation -------------------------------------------------------------------------------


def _state_key() -> str:
    return f"oauth_state:{g.brand.id}"


# The code step lives in the server-side session, so reopening the page keeps it.
RESEND_SECONDS = sms.PHONE_LIMITS[0][1]


def _sent_key() -> str:
    return f"sms_sent:{g.brand.id}"


def _same_phone(normalised: str, typed: str | None) -> bool:
    try:
        return check_phone(typed) == normalised
    except AppError:
        return False


def _code_step() -> tuple[str, int] | None:
    """(phone, seconds until a new code may be sent) while a sent code can still be used."""
    sent = session.get(_sent_key())
    if not sent:
        return None
    age = int(time.time()) - int(sent.get("t", 0))
    if not 0 <= age < sms.CODE_TTL:
        session.pop(_sent_key(), None)
        return None
    return sent["p"], max(0, RESEND_SECONDS - age)


@activate_bp.get("/activate")
def start():
    remember_next(request.args.get("next"))
    if member_session.current_member_id() is not None:
        return redirect(pop_next() or url_for("members_center.card"))
    if member_session.current_openid() is None:
        state = secrets.token_urlsafe(16)
        session[_state_key()] = state
        try:
            target = gateway.authorize_url(
                g.brand.id, _public(".oauth"), scope="snsapi_base", state=state
            )
        except gateway.NotConfigured:
            return _problem(_("This brand cannot sign in with WeChat yet."), 503)
        return redirect(target)
    if request.args.get("change") == "1":
        session.pop(_sent_key(), None)
        return redirect(url_for(".start"))
    return _step_page()


def _step_page(*, address: str | None = None):
    """The activation page at its current step: the code step while a sent code can still be
    used, else the phone step. ``address``: the page's own address, which its script puts in
    the address bar when the page answered another one (the OAuth return)."""
    step = _code_step()
    if step is not None:
        form = ActivateForm(formdata=None, phone=step[0])
        return _render_activate(form, step="code", address=address)
    return _render_activate(PhoneForm(), step="phone", address=address)


def _render_activate(
    form, *, step: str, status: int = 200, phone: str = "", address: str | None = None
):
    code_step = _code_step() if step == "code" else None
    phone = phone or (code_step[0] if code_step else "")
    html = render_template(
        "members/member/activate/start.html",
        form=form,
        step=step,
        phone=phone,
        resend_in=code_step[1] if code_step and code_step[0] == phone else 0,
        sandbox_sms=_sandbox_sms(),
        address=address,
    )
    return html, status


def _sandbox_sms() -> bool:
    """Whether codes go to the WeChat sandbox's SMS inbox (a page links to it) rather than
    to a real SMS provider."""
    return bool(current_app.config.get("SANDBOX_ENABLED")) and sms.uses_sandbox_sender(current_app)


@activate_bp.get("/activate/oauth")
def oauth():
    expected = session.pop(_state_key(), None)
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not expected or not secrets.compare_digest(expected, state) or not code:
        return _problem(
            _("This sign-in link is not valid any more. Please try again."), 400, retry=True
        )
    try:
        user = gateway.fetch_oauth_user(g.brand.id, code)
    except gateway.OAuthCodeError:
        return _problem(
            _("This sign-in link was already used or has expired. Please try again."),
            400,
            retry=True,
        )
    except gateway.WeChatError:
        return _problem(
            _("WeChat is busy right now. Please try again in a moment."), 503, retry=True
        )
    if user.get("is_snapshotuser"):
        return _problem(_("Please open this page in WeChat (not the preview) to join."), 403)
    openid, unionid = user["openid"], user.get("unionid")
    member_id = card_holder_id(kind="oa_openid", value=openid)
    member_session.login(brand_id=g.brand.id, openid=openid, unionid=unionid, member_id=member_id)
    if member_id is not None:
        return redirect(pop_next() or url_for("members_center.card"))
    # The activation page answers here (one redirect less on the way in); its script puts
    # /activate in the address bar, so that reloading it does not reuse the spent code.
    return _step_page(address=url_for(".start"))


def _need_openid() -> str:
    openid = member_session.current_openid()
    if openid is None:
        abort(redirect(url_for(".start")))
    return openid


@activate_bp.post("/activate/code")
def send_code():
    """Send the SMS code. The page's script asks for JSON and stays on the page (the code
    step appears in place); without the script the form posts here and is redirected to the
    code step."""
    _need_openid()
    form = PhoneForm()
    as_json = wants_json()
    if not form.validate_on_submit():
        if as_json:
            return _code_refused(form, 400)
        return _render_activate(form, step="phone", status=400)
    try:
        phone = sms.send_code(
            brand_id=g.brand.id,
            phone=form.phone.data,
            ip=request.remote_addr or "",
            brand_name=g.brand.name,
        )
    except AppError as exc:
        form.phone.errors = [exc.message]
        if as_json:
            return _code_refused(form, exc.status)
        step = _code_step()
        if (
            step is not None
            and _same_phone(step[0], form.phone.data)
            and exc.code == "rate_limited"
        ):
            # A resend inside the minute (the button's countdown was skipped): stay on the
            # code step, whose button counts down again.
            again = ActivateForm(formdata=None, phone=step[0])
            again.phone.errors = [exc.message]
            return _render_activate(again, step="code", status=exc.status, phone=step[0])
        return _render_activate(form, step="phone", status=exc.status)
    session[_sent_key()] = {"p": phone, "t": int(time.time())}
    if as_json:
        inbox = (
            url_for("members_sandbox_sms.sandbox_inbox", phone=phone) if _sandbox_sms() else None
        )
        return jsonify(
            phone=phone,
            sent=_("A 6-digit code was sent to %(phone)s.", phone=phone),
            resend_in=RESEND_SECONDS,
            inbox=inbox,
        )
    return redirect(url_for(".start"), 303)


def _code_refused(form, status: int):
    """The JSON answer of a code that was not sent, with the phone field's message."""
    errors = form.phone.errors or [e for errs in form.errors.values() for e in errs]
    body = {"error": {"code": "not_sent", "message": str(errors[0]), "field": "phone"}}
    return jsonify(body), status


@activate_bp.post("/activate")
def activate():
    openid = _need_openid()
    form = ActivateForm()
    if not form.validate_on_submit():
        return _render_activate(form, step="code", status=400, phone=form.phone.data or "")
    if form.consent.data != "yes":
        form.consent.errors = [_("Please agree to the privacy terms to join.")]
        return _render_activate(form, step="code", status=400, phone=form.phone.data)
    try:
        phone = sms.check_code(brand_id=g.brand.id, phone=form.phone.data, code=form.code.data)
        member, _created = card.complete_activation(
            phone=phone,
            openid=openid,
            unionid=member_session.current_unionid(),
            source="oa",
            consent_version=card.PRIVACY_TERMS_VERSION,
        )
    except AppError as exc:
        db.session.rollback()
        field = getattr(form, exc.field or "", None) or form.code
        field.errors = [exc.message]
        return _render_activate(form, step="code", status=exc.status, phone=form.phone.data)
    member_id = member.id
    db.session.commit()
    session.pop(_sent_key(), None)
    member_session.login(
        brand_id=g.brand.id,
        openid=openid,
        unionid=member_session.current_unionid(),
        member_id=member_id,
    )
    return redirect(pop_next() or url_for("members_center.card", welcome=1))


@activate_bp.get("/activate/terms")
def terms():
    return render_template("members/member/activate/terms.html", version=card.PRIVACY_TERMS_VERSION)


@activate_bp.get("/card/activate")
def card_activate():
    """WeChat's jump activation: the form is read back through activatetempinfo."""
    ticket = request.args.get("activate_ticket", "")
    encrypt_code = request.args.get("encrypt_code", "")
    card_id = request.args.get("card_id", "")
    if not (ticket and encrypt_code and card_id) or max(map(len, (ticket, encrypt_code))) > 512:
        return _problem(_("This activation link is incomplete."), 400)
    try:
        code, openid = card.card_owner(encrypt_code=encrypt_code, card_id=card_id)
        member, _created = card.native_activate(
            activate_ticket=ticket, card_id=card_id, code=code, openid=openid
        )
    except AppError as exc:
        db.session.rollback()
        return _problem(exc.message, exc.status)
    except gateway.WeChatError:
        db.session.rollback()
        return _problem(_("This activation link is not valid any more."), 400)
    member_id = member.id
    db.session.commit()
    member_session.login(brand_id=g.brand.id, openid=openid, member_id=member_id)
    return redirect(url_for("members_center.card", welcome=1))


# --- member center ----------------------------------------------------------------------------


def _member() -> member_session.SignedInMember:
    member = member_session.current_member()
    if member is None:
        abort(401)  # led to sign-in with ``next`` back here
    return member


@center_bp.get("/", endpoint="card")
def card_page():
    member = _member()
    code = tillcode.make_till_code(member_id=member.id)
    now = utcnow()
    value, params = tiers.value_query(now=now)
    home, home_params = queries.home_figures(member)
    figures, (tier_value, *found) = card_figures(
        member.id, extra=(value, *home), params=params | home_params
    )
    store, guide = queries.home_from(*found)
    return render_template(
        "members/member/card.html",
        member=member,
        store=store,
        guide=guide,
        progress=tiers.tier_progress(
            member_id=member.id, member=member, now=now, value=int(tier_value)
        ),
        till_code=code,
        barcode=barcode.code128_svg(code),
        qrcode=barcode.qr_svg(code),
        seconds_left=tillcode.seconds_left(),
        figures=figures,
        slots=center_slots(),
        welcome=request.args.get("welcome") == "1",
    )


@center_bp.get("/till-code")
def till_code():
    member = _member()
    code = tillcode.make_till_code(member_id=member.id)
    resp = Response(
        json.dumps(
            {
                "code": code,
                "seconds_left": tillcode.seconds_left(),
                "barcode": str(barcode.code128_svg(code)),
                "qrcode": str(barcode.qr_svg(code)),
            }
        ),
        mimetype="application/json",
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _as_member(member: Member):
    return acting_as(Actor("member", member.id, f"member {member.card_no}"))


@center_bp.route("/profile", methods=["GET", "POST"])
def profile():
    member = _member()
    form = ProfileForm(obj=member)
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("members/member/profile.html", form=form), 400
        member = db.session.get(Member, member.id)
        with _as_member(member):
            member.name = form.name.data
            member.birthday = form.birthday.data
            member.gender = form.gender.data or ""
            db.session.flush()
        db.session.commit()
        return redirect(url_for(".profile", saved=1))
    return render_template(
        "members/member/profile.html", form=form, saved=request.args.get("saved") == "1"
    )


def confirm_word() -> str:
    """The word a member types to delete the account (注销 in the Chinese UI)."""
    return _("DELETE")


@center_bp.get("/privacy")
def privacy_page():
    _member()
    return render_template(
        "members/member/privacy.html",
        form=DeleteForm(),
        version=card.PRIVACY_TERMS_VERSION,
        confirm_word=confirm_word(),
    )


@center_bp.get("/privacy/data.json")
def privacy_download():
    member = _member()
    data = data_rights.export_member_data(member_id=member.id)
    resp = Response(
        json.dumps(data, ensure_ascii=False, indent=1, default=str),
        mimetype="application/json",
    )
    resp.headers["Content-Disposition"] = f'attachment; filename="member-{member.card_no}.json"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@center_bp.post("/privacy/delete")
def privacy_delete():
    member = _member()
    form = DeleteForm()
    if not form.validate_on_submit() or (form.confirm.data or "").strip() != confirm_word():
        form.confirm.errors = [_("Please type %(word)s to confirm.", word=confirm_word())]
        html = render_template(
            "members/member/privacy.html",
            form=form,
            version=card.PRIVACY_TERMS_VERSION,
            confirm_word=confirm_word(),
        )
        return html, 400
    data_rights.delete_member(member_id=member.id, reason="member request (member center)")
    db.session.commit()
    member_session.logout(brand_id=g.brand.id)
    return render_template("members/member/deleted.html")
