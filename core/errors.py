"""Domain errors and the one handler that turns them into 4xx responses."""

from __future__ import annotations

import logging

import redis
from flask import Flask, g, jsonify, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from core.db import db

log = logging.getLogger(__name__)

REDIS_RETRY_AFTER = 5


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


def init_app(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError):
        db.session.rollback()
        if wants_json():
            return jsonify(exc.to_dict()), exc.status
        return render_template("core/error.html", code=exc.status, message=exc.message), exc.status

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
        page = render_template("core/error.html", code=exc.code, message=exc.description)
        return page, exc.code, headers

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_down(exc: Exception):
        """Redis unreachable: 503 with Retry-After; nothing was committed by this request."""
        db.session.rollback()
        g.redis_unavailable = True  # the page itself must not ask Redis for the session
        log.error("redis unavailable: %s", exc)
        headers = {"Retry-After": str(REDIS_RETRY_AFTER)}
        message = gettext("The service is briefly unavailable. Please try again shortly.")
        if wants_json():
            body = {"error": {"code": "unavailable", "message": message, "field": None}}
            return jsonify(body), 503, headers
        # A page of its own: the console's layout would ask Redis for the session again.
        return render_template("core/unavailable.html", message=message), 503, headers

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        if wants_json():
            return jsonify(
                {"error": {"code": "internal", "message": "internal error", "field": None}}
            ), 500
        return render_template("core/error.html", code=500, message="Internal error"), 500
