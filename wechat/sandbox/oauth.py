"""Fake web OAuth: the authorize page, sns/oauth2/access_token and sns/userinfo.

The authorize page stands for the consumer's WeChat: pass ``uid`` (a sandbox consumer) to
go straight back with a code, or pick one on the page. ``snapshot=1`` plays a virtual user of
WeChat's "snapshot page" mode (``is_snapshotuser: 1``).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import redirect, render_template_string, request
from flask_babel import gettext as _

from wechat.sandbox import accounts, store
from wechat.sandbox.api import bp, err

_PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>body{font-family:sans-serif;max-width:420px;margin:2em auto;padding:0 1em}
a.c{display:block;padding:.7em;margin:.4em 0;border:1px solid #ddd;border-radius:6px;
text-decoration:none;color:#222}button{padding:.5em 1em}</style></head>
<body><h1>{{ title }}</h1><p>{{ account_label }}: {{ account.name }}</p>
{% if consumers %}<p>{{ pick_label }}</p>{% endif %}
{% for c in consumers %}<a class="c" href="{{ link(c.uid) }}">{{ c.nickname }}</a>{% endfor %}
<form method="post"><input name="nickname" required placeholder="{{ nickname_label }}">
<button type="submit">{{ create_label }}</button></form></body></html>"""


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def authorize_code(appid: str, uid: str, scope: str, *, snapshot: bool = False) -> str:
    """A single-use OAuth code for consumer ``uid`` (what the authorize page issues)."""
    openid = store.openid_for(appid, "snapshot:" + uid if snapshot else uid)
    return store.issue_code(
        "oauth",
        {"appid": appid, "uid": uid, "openid": openid, "scope": scope, "snapshot": snapshot},
    )


@bp.route("/connect/oauth2/authorize", methods=["GET", "POST"])
def authorize():
    appid = request.args.get("appid", "")
    account = accounts.get_account(appid)
    redirect_uri = request.args.get("redirect_uri", "")
    scope = request.args.get("scope", "snsapi_base")
    if account is None or not redirect_uri.startswith(("http://", "https://")):
        return _("Invalid OAuth request (appid or redirect_uri)."), 400
    if scope not in ("snsapi_base", "snsapi_userinfo"):
        return _("Invalid OAuth scope."), 400
    # the phone simulator marks the consumer holding the phone (wechat.sandbox.phone)
    uid = request.args.get("uid") or request.cookies.get("wmb_sandbox_consumer")
    if request.method == "POST":
        nickname = (request.form.get("nickname") or "").strip()[:40]
        if not nickname:
            return _("A nickname is required."), 400
        uid = store.create_consumer(nickname)["uid"]
    if uid and store.get_consumer(uid) is not None:
        code = authorize_code(appid, uid, scope, snapshot=request.args.get("snapshot") == "1")
        return redirect(_with_query(redirect_uri, code=code, state=request.args.get("state", "")))

    def link(consumer_uid: str) -> str:
        return request.path + "?" + urlencode({**request.args.to_dict(), "uid": consumer_uid})

    return render_template_string(
        _PAGE,
        title=_("Sign in with WeChat (sandbox)"),
        account_label=_("Official account"),
        pick_label=_("Continue as:"),
        nickname_label=_("New consumer's nickname"),
        create_label=_("Create and continue"),
        account=account,
        consumers=store.list_consumers(),
        link=link,
    )


@bp.get("/sns/oauth2/access_token")
def oauth_access_token():
    appid = request.args.get("appid")
    account = accounts.get_account(appid)
    if account is None:
        return err(40013)
    if not secrets.compare_digest(account["secret"] or "", request.args.get("secret") or ""):
        return err(40125)
    if request.args.get("grant_type") != "authorization_code":
        return err(40002)
    code, data = store.redeem_code("oauth", request.args.get("code"))
    if code:
        return err(code)
    if data["appid"] != appid:
        return err(40029)
    token = "sns_" + secrets.token_urlsafe(32)
    store.put_doc("sns_token", appid, token, data)
    body = {
        "access_token": token,
        "expires_in": 7200,
        "refresh_token": "snsr_" + secrets.token_urlsafe(32),
        "openid": data["openid"],
        "scope": data["scope"],
    }
    if data["snapshot"]:
        body["is_snapshotuser"] = 1
    else:
        consumer = store.get_consumer(data["uid"]) or {}
        if consumer.get("unionid"):
            body["unionid"] = consumer["unionid"]
    return body


@bp.get("/sns/userinfo")
def oauth_userinfo():
    token = request.args.get("access_token") or ""
    openid = request.args.get("openid") or ""
    for account in accounts.list_accounts():
        data = store.get_doc("sns_token", account["appid"], token)
        if data is None:
            continue
        if data["openid"] != openid:
            return err(40003)
        if data["scope"] != "snsapi_userinfo":
            return err(48001)
        consumer = store.get_consumer(data["uid"]) or {}
        return {
            "openid": openid,
            "nickname": consumer.get("nickname", ""),
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": "",
            "privilege": [],
            "unionid": consumer.get("unionid"),
        }
    return err(40001)
