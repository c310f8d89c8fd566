"""Request guards in one place: input no view should ever see, and the response headers
every page carries.

- A NUL byte anywhere in the path answers 404, in the query string, a form field or a JSON
  body 400: PostgreSQL cannot store it and no legitimate input has one.
- JSON nested deeper than ``MAX_JSON_DEPTH`` is refused before it is parsed (Python's
  parser would recurse until RecursionError).
- Pages get a Content-Security-Policy whose script-src admits only this origin and the
  per-request nonce (``csp_nonce()`` in templates), and may be framed only by this origin
  (the phone simulator shows member pages in a frame).
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest, NotFound

from core.errors import ValidationError

MAX_JSON_DEPTH = 32

_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")


def json_depth_exceeds(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays/objects deeper than ``limit`` (strings skipped)."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON with a depth limit on everything it parses (``request.get_json``)."""

    def loads(self, s, **kwargs):
        if json_depth_exceeds(s):
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(s, **kwargs)


NUL_MESSAGE = "The request contains a NUL byte."


def _nul_field(mapping) -> str | None:
    """The first key of a form or query mapping whose name or value holds a NUL byte."""
    for name, value in mapping.items(multi=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "")
    return None


def _nul_path(value, path: str = "") -> str | None:
    """The dotted path of the first JSON string holding a NUL byte ("" for the root)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if not isinstance(value, dict | list):
        return None
    for k, v in value.items() if isinstance(value, dict) else enumerate(value):
        if isinstance(k, str) and "\x00" in k:
            return path
        found = _nul_path(v, f"{path}.{k}" if path else str(k))
        if found is not None:
            return found
    return None


def _refuse_nul(field: str | None) -> None:
    raise ValidationError(_l(NUL_MESSAGE), field=field or None, code="bad_request")


def refuse_nul_path(_endpoint, _values) -> None:
    """First of all URL preprocessors (they load brands by slug): a NUL in the path is 404."""
    if "\x00" in request.path:
        raise NotFound()


def refuse_bad_input() -> None:
    """Before every request: NUL bytes and over-deep JSON never reach a view."""
    if "\x00" in request.path:
        raise NotFound()
    if b"%00" in request.query_string or "\x00" in request.query_string.decode("latin-1"):
        _refuse_nul(_nul_field(request.args))
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    if request.is_json:
        body = request.get_data(cache=True)
        if json_depth_exceeds(body):
            raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        if b"\x00" in body or b"\\u0000" in body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            _refuse_nul(_nul_path(parsed) if parsed is not None else None)
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        field = _nul_field(request.form)
        if field is not None:
            _refuse_nul(field)


def csp_nonce() -> str:
    """This response's script nonce (one per request)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def _image_origin() -> str:
    """The origin of an S3-compatible store's public URL (STORAGE_PUBLIC_URL), which pages
    show product images from; nothing for the local store (this origin)."""
    parts = urlsplit(current_app.config.get("STORAGE_PUBLIC_URL") or "")
    if parts.scheme in ("http", "https") and parts.netloc and parts.netloc.isascii():
        if not any(c in parts.netloc for c in " ;'\"\\"):
            return f" {parts.scheme}://{parts.netloc}"
    return ""


def page_headers(response):
    """Security headers on every HTML page (JSON APIs need only nosniff)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{csp_nonce()}'; "
            "style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob:{_image_origin()}; "
            "connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'self'",
        )
    return response


def init_app(app: Flask) -> None:
    app.json = GuardedJSONProvider(app)
    app.url_value_preprocessors.setdefault(None, []).insert(0, refuse_nul_path)
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_bad_input)
    app.after_request(page_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
