"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

import gc

from app import create_app

app = create_app()
# What is loaded by now lives as long as the worker: keep it out of the collector's full
# passes, which otherwise stall every request of the worker (over 100 ms measured).
gc.freeze()
