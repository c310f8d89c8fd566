"""Domain errors and the one handler that turns them into 4xx responses."""

from __future__ import annotations

import logging

import psycopg
import redis
import sqlalchemy.exc
from flask import Flask, g, jsonify, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from core.db import db

log = logging.getLogger(__name__)

REDIS_RETRY_AFTER = 5
# PostgreSQL aborted the transaction on its own; the same request a moment later succeeds.
TRANSIENT = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.LockNotAvailable,
    psycopg.errors.QueryCanceled,
)
TRANSIENT_RETRY_AFTER = 1

# What a person sees on an error page: a title and what to do, in the page's language, never
# Werkzeug's English descriptions. JSON bodies keep their own messages.
ERROR_TEXTS: dict[int, tuple[object, object]] = {
    400: (
        _l("Request not accepted"),
        _l("The request could not be processed. Go back and try again."),
    ),
    403: (
        _l("Not allowed"),
        _l("Your account may not open this page. Ask your brand administrator for access."),
    ),
    404: (
        _l("Page not found"),
        _l("This page does not exist or has been removed. Check the address or use the menu."),
    ),
    405: (
        _l("Action not supported"),
        _l("This page does not support that action. Go back and try again."),
    ),
    429: (_l("Too many requests"), _l("You are going a little fast. Wait a moment and try again.")),
    500: (
        _l("Something went wrong"),
        _l("An unexpected error occurred and has been logged. Please try again later."),
    ),
    503: (
        _l("Service unavailable"),
        _l("The service is briefly unavailable. Please try again shortly."),
    ),
}

# Path prefixes whose error pages use another shell (the member center registers "/m/").
_ERROR_PAGES: list[tuple[str, str]] = []


def register_error_page(prefix: str, template: str) -> None:
    """Render errors under ``prefix`` with ``template`` (given code, title and message)."""
    if (prefix, template) not in _ERROR_PAGES:
        _ERROR_PAGES.append((prefix, template))


def error_text(code: int) -> tuple[str, str]:
    """The title and message an error page shows for an HTTP status."""
    if code not in ERROR_TEXTS:
        code = 500 if code >= 500 else 400
    title, message = ERROR_TEXTS[code]
    return str(title), str(message)


def render_error(code: int, message: str | None = None) -> str:
    """The HTML error page for this request's area (console, member center, ...)."""
    title, default = error_text(code)
    context = {"code": code, "title": title, "message": message or default}
    for prefix, template in _ERROR_PAGES:
        if request.path.startswith(prefix):
            try:
                return render_template(template, **context)
            except Exception:
                # The area's shell itself failed (no brand for its header): a bare page, not a 500.
                log.exception("error page %s failed", template)
                return render_template("core/unavailable.html", **context)
    return render_template("core/error.html", **context)


class AppError(Exception):
    """A failure the caller can act on; rendered as ``{"error": {code, message, field}}``."""

    status = 400
    code = "bad_request"

    def __init__(self, message, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = str(message)
        self.field = field
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class ValidationError(AppError):
    status = 400
    code = "invalid"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class Conflict(AppError):
    status = 409
    code = "conflict"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/healthz", "/metrics")) or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def unavailable(*, retry_after: int):
    """A 503 answer (JSON or a page of its own) after rolling back: a part the request needs
    (Redis, the file store) is unreachable; nothing was committed."""
    db.session.rollback()
    headers = {"Retry-After": str(retry_after)}
    message = gettext("The service is briefly unavailable. Please try again shortly.")
    if wants_json():
        body = {"error": {"code": "unavailable", "message": message, "field": None}}
        return jsonify(body), 503, headers
    # A page of its own: the console's layout would ask Redis for the session again.
    return render_template("core/unavailable.html", message=message), 503, headers


def init_app(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError):
        db.session.rollback()
        if wants_json():
            return jsonify(exc.to_dict()), exc.status
        return render_error(exc.status, exc.message), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        db.session.rollback()
        body = {
            "error": {
                "code": exc.name.lower().replace(" ", "_"),
                "message": exc.description,
                "field": None,
            }
        }
        # Allow (405), Retry-After, WWW-Authenticate: what the exception itself would send.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        if wants_json():
            return jsonify(body), exc.code, headers
        return render_error(exc.code), exc.code, headers

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_down(exc: Exception):
        """Redis unreachable: 503 with Retry-After; nothing was committed by this request."""
        g.redis_unavailable = True  # the page itself must not ask Redis for the session
        log.error("redis unavailable: %s", exc)
        return unavailable(retry_after=REDIS_RETRY_AFTER)

    @app.errorhandler(sqlalchemy.exc.OperationalError)
    def _database_error(exc: sqlalchemy.exc.OperationalError):
        """A transaction PostgreSQL chose to abort (a deadlock victim, a serialization
        failure, a lock or statement timeout) changed nothing: 503, try again shortly."""
        if isinstance(exc.orig, TRANSIENT):
            log.warning("transaction aborted, answered 503: %s", type(exc.orig).__name__)
            return unavailable(retry_after=TRANSIENT_RETRY_AFTER)
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        if wants_json():
            return jsonify(
                {"error": {"code": "internal", "message": "internal error", "field": None}}
            ), 500
        return render_error(500), 500
