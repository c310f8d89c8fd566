"""Translations: Simplified Chinese by default, English on request."""

from __future__ import annotations

from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, get_locale

from config import BASE_DIR

babel = Babel()

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
