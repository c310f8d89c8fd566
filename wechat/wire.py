"""The callback's wire format: the request as read from WSGI, the strict XML parser, the
answer, and the WSGI front that serves the callback ahead of Flask's request pipeline.

Nothing here knows brands, Redis or handlers: ``CallbackFront`` is given the function that
answers a delivery (``wechat.callback.callback``).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl
from xml.parsers import expat

from flask import Flask, Request, Response, current_app, g, has_request_context
from flask.ctx import RequestContext
from flask.sessions import NullSession
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length, get_input_stream

from core.db import db
from core.jobs import relay_committed
from core.logs import request_id
from core.metrics import record_request

RULE = "/wechat/<slug>/callback"
MAX_BODY = 1024 * 1024
MAX_DEPTH = 5


class BadMessage(ValueError):
    """The body is not a message WeChat would send."""


class Answer:
    """The callback's answer: a status and a short body, served as a WSGI app. (WeChat reads
    nothing else; a werkzeug Response cost more CPU than encrypting the reply.)"""

    __slots__ = ("status_code", "body", "headers")

    def __init__(self, body: str | bytes, status: int, mimetype: str):
        self.status_code = status
        self.body = body.encode() if isinstance(body, str) else body
        charset = "; charset=utf-8" if mimetype.startswith("text/") or "xml" in mimetype else ""
        self.headers = [
            ("Content-Type", mimetype + charset),
            ("Content-Length", str(len(self.body))),
        ]

    def __call__(self, environ, start_response):
        start_response(f"{self.status_code} {HTTP_STATUS_CODES[self.status_code]}", self.headers)
        return [self.body]

    def response(self) -> Response:
        """The same answer as a werkzeug Response (for Flask's own route)."""
        return Response(self.body, status=self.status_code, headers=self.headers)


def plain(body: str | bytes = "", status: int = 200, mimetype: str = "text/plain") -> Answer:
    return Answer(body, status, mimetype)


class WireRequest:
    """What the callback reads of a request (method, query arguments, body), read straight
    from the WSGI environ; a werkzeug ``Request`` offers the same and is used on Flask's own
    route."""

    __slots__ = ("environ", "method", "args")

    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET")
        args: dict[str, str] = {}
        for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            args.setdefault(name, value)  # the first value, as werkzeug's MultiDict.get
        self.args = args

    @property
    def content_length(self) -> int | None:
        return get_content_length(self.environ)

    @property
    def stream(self):
        return get_input_stream(self.environ)


# --- strict XML ----------------------------------------------------------------------------


def _forbid(*_args) -> None:
    raise BadMessage("DTDs and entity declarations are not accepted")


def parse_xml(body: bytes) -> dict:
    """A WeChat XML document as a dict of its root's children.

    An element is its text, or a dict of its children. WeChat never sends a DTD, so any
    DOCTYPE (the door to entity expansion and external entities) is refused at its first
    byte. A tag repeated directly under ``<xml>`` (two ``FromUserName``, two ``Encrypt``) is
    refused rather than silently turned into a list; deeper down, a repeated tag is a list
    in document order (``<item>`` articles, a subscribe event's ``<List>`` per template,
    ``<AroundBeacon>`` beacons). A tag found once is not a list: read containers with
    ``children`` so that one element and two have the same shape.
    """
    if not body or not body.strip():
        raise BadMessage("empty body")
    stack: list[dict] = [{}]
    texts: list[list[str]] = [[]]

    def start(name: str, _attrs) -> None:
        if len(stack) > MAX_DEPTH:
            raise BadMessage("too deep")
        stack.append({})
        texts.append([])

    def end(name: str) -> None:
        children, text = stack.pop(), "".join(texts.pop())
        value: object = children or text
        parent = stack[-1]
        if name not in parent:
            parent[name] = value
        elif len(stack) <= 2:  # a field of the message itself (the parent is <xml>)
            raise BadMessage(f"duplicated <{name}>")
        elif isinstance(prev := parent[name], list):  # parsed values are never lists
            prev.append(value)
        else:
            parent[name] = [prev, value]

    def chars(data: str) -> None:
        texts[-1].append(data)

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
    except BadMessage:
        raise
    except Exception as exc:  # expat raises ExpatError, ValueError, LookupError, ...
        raise BadMessage(f"not well-formed XML: {exc}") from exc
    root = stack[0].get("xml")
    if len(stack) != 1 or not isinstance(root, dict):
        raise BadMessage("the root element must be <xml>")
    return root


def children(container: Any, name: str) -> list:
    """The ``<name>`` elements inside a parsed container element, as a list in document
    order: one element is a list of one, none (or no container) an empty list."""
    if not isinstance(container, dict):
        return []
    found = container.get(name)
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def text(msg: dict, name: str, *, max_len: int, required: bool = False) -> str | None:
    """The text of the child ``<name>``: None when absent or empty, BadMessage when it is
    required and missing, a container or longer than ``max_len``."""
    value = msg.get(name)
    if value is None or value == "":
        if required:
            raise BadMessage(f"<{name}> is missing")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise BadMessage(f"<{name}> is not a short text")
    return value


# --- the WSGI front ------------------------------------------------------------------------

_PATH_RE = re.compile(r"^/wechat/([^/]+)/callback$")


class CallbackFront:
    """Serves ``/wechat/<slug>/callback`` ahead of Flask's request pipeline; every other
    request goes on to Flask.

    WeChat's servers are the only callers: no cookie session, no signed-in user, no CSRF
    token, no locale. Flask's pipeline (URL matching, opening and saving the session,
    Flask-Login, CSRF, every app-wide hook) cost more CPU than the callback itself, so here
    the callback runs in an app context with the request passed to it, and does only what
    it needs of those hooks: the request id (``X-Request-ID`` in and out, in the logs), the
    request metrics and the hand-over of jobs the handlers committed. Handlers that are not
    pure run inside a request context (``request`` and ``url_for`` work there as anywhere,
    with a null session); an exception goes through the app's error handlers as in Flask's
    own dispatch (an HTTP or domain error gets its 4xx; anything else is logged and gets the
    500 page, or is raised under TESTING).
    """

    def __init__(self, app: Flask, wsgi_app, serve: Callable[[WireRequest, str], Answer]):
        self.app = app
        self.wsgi_app = wsgi_app
        self.serve = serve

    def __call__(self, environ, start_response):
        found = _PATH_RE.match(environ.get("PATH_INFO", ""))
        if found is None or environ.get("REQUEST_METHOD") not in ("GET", "POST"):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        app = self.app
        with app.app_context():
            req = WireRequest(environ)
            g.request_id = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
            try:
                response = self.serve(req, found[1])
            except Exception as exc:
                # as Flask's own dispatch: the app's error handlers first (HTTP errors, the
                # domain's errors), then the 500 path for anything else
                with request_context(req):
                    try:
                        response = app.make_response(app.handle_user_exception(exc))
                    except Exception as unhandled:
                        response = app.handle_exception(unhandled)
            if db.session.registry.has():
                relay_committed()
            if isinstance(response, Answer):
                response.headers.append(("X-Request-ID", g.request_id))
            else:
                response.headers["X-Request-ID"] = g.request_id
            record_request(req.method, RULE, response.status_code, time.perf_counter() - started)
            return response(environ, start_response)


@contextlib.contextmanager
def request_context(req: Request | WireRequest):
    """A request context for ``req`` (with a null session) unless one is active."""
    if has_request_context():
        yield
        return
    ctx = RequestContext(current_app._get_current_object(), req.environ, session=NullSession())
    ctx.push()
    try:
        yield
    finally:
        ctx.pop()
