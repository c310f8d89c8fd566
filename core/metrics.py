"""Prometheus metrics: request counts and latencies, job outcomes, queue depth.

Under gunicorn set PROMETHEUS_MULTIPROC_DIR so that every worker process writes its samples
to that directory and /metrics aggregates them.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from flask import Flask, Response, abort, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

REQUESTS = Counter("wmb_http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "wmb_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS = Counter("wmb_jobs_total", "Jobs run, by function and outcome", ["func", "outcome"])
JOB_SECONDS = Histogram("wmb_job_duration_seconds", "Job run time", ["func"])
WECHAT_CALLS = Counter(
    "wmb_wechat_api_calls_total", "Calls to the WeChat API", ["brand", "api", "errcode"]
)


class _LiveCollector:
    """Gauges read at scrape time: queue depth and outbox rows by status."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from core import jobs

        depth = GaugeMetricFamily("wmb_queue_depth", "Jobs waiting in RQ", labels=["queue"])
        outbox = GaugeMetricFamily("wmb_outbox_jobs", "Outbox rows by status", labels=["status"])
        with self.app.app_context():
            try:
                for name, n in jobs.queue_depths().items():
                    depth.add_metric([name], n)
            except Exception:  # noqa: S110 - a scrape must not fail because Redis is down
                pass
            try:
                for status, n in jobs.outbox_counts().items():
                    outbox.add_metric([status], n)
            except Exception:  # noqa: S110
                pass
        yield depth
        yield outbox


# (method, rule, status) -> the counter and histogram children; labels() costs a lock
# and several lookups per call, and the set of keys is small (routes x methods x codes).
_CHILDREN: dict[tuple[str, str, int], tuple] = {}


def record_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    """Count one answered request of route ``endpoint`` and observe its latency."""
    k = (method, endpoint, status)
    pair = _CHILDREN.get(k)
    if pair is None:
        pair = _CHILDREN[k] = (
            REQUESTS.labels(method, endpoint, str(status)),
            LATENCY.labels(method, endpoint),
        )
    pair[0].inc()
    pair[1].observe(seconds)


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def init_app(app: Flask) -> None:
    live = _LiveCollector(app)

    @app.before_request
    def _start_timer():
        g._metrics_start = time.perf_counter()

    @app.after_request
    def _record(response):
        start = getattr(g, "_metrics_start", None)
        if start is not None:
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            record_request(
                request.method, endpoint, response.status_code, time.perf_counter() - start
            )
        return response

    @app.get("/metrics")
    def metrics():
        token = app.config.get("METRICS_TOKEN")
        if token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                abort(404)
        elif not _is_loopback(request.remote_addr):
            abort(404)
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            from prometheus_client import REGISTRY

            for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001
                registry.register(collector)
        registry.register(live)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
