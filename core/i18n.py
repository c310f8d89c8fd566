"""Translations: Simplified Chinese by default, English on request."""

from __future__ import annotations

from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask_babel import Babel, Domain, get_locale
from werkzeug.utils import cached_property

from config import BASE_DIR


class RequestDomain(Domain):
    """Flask-Babel's message domain, keeping the translations it finds for the rest of the
    request: every ``_()`` (a page has dozens) otherwise goes through the locale selector's
    cache and the catalog cache by locale name again. Kept with the locale they were found
    for, so ``refresh()`` and ``force_locale()``, which change that locale, are obeyed."""

    def get_translations(self):
        try:
            ctx = g._flask_babel.__dict__  # Flask-Babel's per-request state
        except (AttributeError, RuntimeError):  # not yet made; no app context
            ctx = None
        if ctx is not None:
            hit = ctx.get("wmb_translations")
            if hit is not None and hit[0] is self and hit[1] is ctx.get("babel_locale", hit):
                return hit[2]
        translations = super().get_translations()
        if has_app_context() and "_flask_babel" in g:
            ctx = g._flask_babel.__dict__
            ctx["wmb_translations"] = (self, ctx.get("babel_locale"), translations)
        return translations


class _Babel(Babel):
    @cached_property
    def domain_instance(self):
        return RequestDomain(domain=self.domain)


babel = _Babel()

# Every package keeps its own catalog; Flask-Babel merges them.
CATALOGS = (
    "core",
    "org",
    "wechat",
    "members",
    "points",
    "coupons",
    "shop",
    "guide_distribution",
    "games",
    "campaigns",
)


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI commands, jobs and the WeChat callback
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    lang = request.args.get("lang") or request.cookies.get("lang")
    if lang in languages:
        return lang
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app: Flask) -> None:
    dirs = [str(BASE_DIR / pkg / "translations") for pkg in CATALOGS]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(dirs)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale

    @app.after_request
    def _remember_lang(response):
        lang = request.args.get("lang")
        if lang in app.config["LANGUAGES"]:
            response.set_cookie(
                "lang",
                lang,
                max_age=365 * 24 * 3600,
                samesite="Lax",
                httponly=True,
                secure=app.config["SESSION_COOKIE_SECURE"],
            )
        return response
