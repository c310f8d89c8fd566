"""The sandbox as a server of its own (tests, benchmarks): ``python -m wechat.sandbox.server``.

It shares Redis (and, to seed accounts from brands, the database) with the app under test,
so a test sees the sandbox's state directly through ``wechat.sandbox.store``. The API is
served under the same /sandbox/wechat prefix as when mounted in the app.
"""

from __future__ import annotations

import argparse
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from config import BASE_DIR, Config
from wechat.sandbox import api


def create_sandbox_app(config: Config | dict | None = None) -> Flask:
    """A Flask app serving only the fake WeChat API."""
    from core import i18n
    from core import redis as core_redis
    from core.db import db
    from wechat.sandbox import api_mp, control, oauth, pay  # noqa: F401 - routes

    app = Flask("wechat_sandbox", template_folder=str(BASE_DIR / "templates"))
    if config is None:
        config = Config()
    app.config.update(config.as_dict() if isinstance(config, Config) else config)
    core_redis.init_app(app)
    i18n.init_app(app)
    if app.config.get("SQLALCHEMY_DATABASE_URI"):
        db.init_app(app)

        @app.teardown_appcontext
        def _remove_session(exc):
            db.session.remove()

    app.register_blueprint(api.bp)
    return app


class SandboxServer:
    """A sandbox app served from a background thread on a loopback port."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.port = self.server.server_port
        self.root = f"http://{host}:{self.port}"
        self.api_base = self.root + api.bp.url_prefix
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SandboxServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the WeChat sandbox API on its own.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    server = SandboxServer(create_sandbox_app(), args.host, args.port)
    print(f"WeChat sandbox API on {server.api_base}", flush=True)  # noqa: T201
    server.server.serve_forever()


if __name__ == "__main__":
    main()
