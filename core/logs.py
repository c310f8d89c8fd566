"""JSON logs carrying the request id."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import uuid

from flask import Flask, g, has_app_context, request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(incoming: str) -> str:
    """The caller's X-Request-ID when it is a sane token, else a new one."""
    return incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_app_context() else None
        return True


# Which of `make run`'s processes (web, worker, scheduler) writes the line.
PROCESS = os.environ.get("WMB_PROCESS", "")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        if PROCESS:
            out["process"] = PROCESS
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(app: Flask) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if app.config.get("LOG_JSON"):
        handler.setFormatter(JsonFormatter())
    else:
        tag = f"{PROCESS:>9} | " if PROCESS else ""
        handler.setFormatter(
            logging.Formatter(
                tag + "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
            )
        )
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_wmb", False):
            root.removeHandler(h)
    handler._wmb = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))

    @app.before_request
    def _request_id():
        g.request_id = request_id(request.headers.get("X-Request-ID", ""))

    @app.after_request
    def _echo_request_id(response):
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-ID"] = rid
        return response
