"""Reach the sandbox mounted in this very app without going through the network.

Under ``make run`` the gateway's WeChat API is the sandbox mounted in the same app
(``WECHAT_API_BASE=http://127.0.0.1:5000/sandbox/wechat``). Calling it over HTTP needs the
server to be up (it is not while ``flask demo`` runs) and a free server thread for every
nested call. With ``WECHAT_SANDBOX_INPROCESS`` on, requests for that base are dispatched to
the app's WSGI callable directly, each in a fresh context (as a separate request would be).
"""

from __future__ import annotations

import contextvars
import io
import os
from urllib.parse import urlsplit

import requests
from flask import current_app
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder, run_wsgi_app


class InProcessAdapter(BaseAdapter):
    """A requests transport that answers from a WSGI app in this process."""

    def __init__(self, wsgi_app):
        super().__init__()
        self.wsgi_app = wsgi_app

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        status, resp_headers, content = dispatch(
            self.wsgi_app, request.method, request.url, headers=headers, body=body or b""
        )
        response = requests.Response()
        response.status_code = int(status.split(" ", 1)[0])
        response.reason = status.split(" ", 1)[1] if " " in status else ""
        response.headers = CaseInsensitiveDict(resp_headers.items())
        response.raw = io.BytesIO(content)
        response._content = content  # noqa: SLF001 - the body is already complete
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.url = request.url
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        return None


def dispatch(
    wsgi_app, method: str, url: str, *, headers: dict | None = None, body: bytes = b""
) -> tuple[str, Headers, bytes]:
    """(status line, headers, body) of ``wsgi_app``'s answer to this request, made in a fresh
    context (as a separate request would be)."""
    parts = urlsplit(url)
    builder = EnvironBuilder(
        path=parts.path,
        query_string=parts.query,
        method=method,
        headers=headers or {},
        data=body,
        base_url=f"{parts.scheme}://{parts.netloc}",
    )
    environ = builder.get_environ()
    builder.close()

    def call():
        app_iter, status, resp_headers = run_wsgi_app(wsgi_app, environ, buffered=True)
        try:
            return status, resp_headers, b"".join(app_iter)
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()

    return contextvars.Context().run(call)


def enabled() -> bool:
    return bool(current_app.config.get("WECHAT_SANDBOX_INPROCESS"))


def aim(session: requests.Session, base: str) -> None:
    """Route ``session``'s requests for ``base`` into this app when so configured.

    The environment's proxy and CA bundle settings for ``base`` are read once, here, rather
    than on every request (requests scans the whole environment per call otherwise, a good
    part of a WeChat call's CPU); the session lives as long as its cached client.
    """
    for k, v in requests.utils.get_environ_proxies(base).items():
        session.proxies.setdefault(k, v)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False
    if enabled():
        app = current_app._get_current_object()  # noqa: SLF001
        session.mount(base.rstrip("/") + "/", InProcessAdapter(app.wsgi_app))
