"""A live server for tests that need real HTTP: the app on a random loopback port.

The app's WeChat API base is its own mounted sandbox and PUBLIC_URL is the server itself, so
the sandbox posts messages to the app's callback and the app calls the sandbox, all over HTTP.
Jobs run inline. It shares the test database and Redis db with the ``app`` fixture, so the
suite's cleanup wipes it between tests too. A pytest plugin (listed in tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.support.apps import build_app


@dataclasses.dataclass
class LiveServer:
    url: str
    app: Flask
    server: BaseWSGIServer

    def invoke(self, *args: str):
        """Run a CLI command (e.g. ``demo``) against the live app; fails on a non-zero exit."""
        result = self.app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(app):
    """The app served by werkzeug's threaded server (``app`` creates the database first)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    live_app = build_app(
        WECHAT_API_BASE=f"{url}/sandbox/wechat", PUBLIC_URL=url, JOBS_INLINE=1, WECHAT_SANDBOX=1
    )
    server = make_server("127.0.0.1", port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(url=url, app=live_app, server=server)
    server.shutdown()
    thread.join(timeout=10)
