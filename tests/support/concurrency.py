"""Race tests: run one function in many threads released together."""

from __future__ import annotations

import threading

from core.db import db
from core.tenancy import use_brand


def run_concurrently(app, brand_id: int, n: int, fn) -> list:
    """Run fn(i) in n threads released together, each in its own app context and session.

    Each returns ("ok", value) after committing or ("error", exception class name).
    """
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        with app.app_context(), use_brand(brand_id):
            barrier.wait()
            try:
                value = fn(i)
                db.session.commit()
                results[i] = ("ok", value)
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                db.session.rollback()
                results[i] = ("error", type(exc).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results
