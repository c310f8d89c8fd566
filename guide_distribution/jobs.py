"""Binding jobs: a leaving guide's customers handed over (big guides), with progress kept in
Redis under the brand's hash tag for the console page. The bindings import's job lives with
the import (``binding_import.import_bindings_job``)."""

from __future__ import annotations

import json
import uuid

from flask import current_app
from flask_babel import lazy_gettext as _l

from core import redis as core_redis
from core.audit import Actor, acting_as, current_actor
from core.db import db
from core.errors import AppError
from core.jobs import job
from core.labels import register_labels
from core.tenancy import require_brand_id
from guide_distribution import handover

PROGRESS_TTL = 7 * 24 * 3600


def actor_args() -> tuple[int | None, str]:
    """The operator starting a job, for the job to record the changes as theirs."""
    actor = current_actor()
    if actor is None or actor.kind != "staff":
        return None, ""
    return actor.id, actor.label


def staff_actor(actor_id: int | None, label: str) -> Actor:
    if actor_id is None:
        return Actor("system", None, "system")
    return Actor("staff", actor_id, label or "staff")


def _key(token: str) -> str:
    return core_redis.key(require_brand_id(), "guide-handover", token)


def save_progress(token: str, **values) -> None:
    pipe = core_redis.get_redis().pipeline()
    pipe.hset(_key(token), mapping={k: json.dumps(v) for k, v in values.items()})
    pipe.expire(_key(token), PROGRESS_TTL)
    pipe.execute()


def progress(token: str) -> dict | None:
    """A hand-over's state: status (queued, running, done, failed), guide_id, total, done,
    taken ({guide id: count}), error; None for an unknown token."""
    if not token.isalnum() or len(token) > 64:
        return None
    raw = core_redis.get_redis().hgetall(_key(token))
    if not raw:
        return None
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


def start_hand_over(
    *, guide_id: int, to_guide_id: int | None, reason: str = ""
) -> tuple[str, dict[int, int] | None]:
    """Hand a leaving guide's customers over: now when they are few (returns who took how
    many; the caller commits), else as a job (the caller commits, which enqueues it)."""
    handover.hand_over_targets(guide_id=guide_id, to_guide_id=to_guide_id)  # refuse early
    total = handover.customers_count(guide_id)
    token = uuid.uuid4().hex
    inline = int(current_app.config.get("GUIDE_HANDOVER_INLINE") or 500)
    base = {"guide_id": guide_id, "to_guide_id": to_guide_id, "total": total}
    if total <= inline:
        taken = handover.hand_over(guide_id=guide_id, to_guide_id=to_guide_id, reason=reason)
        save_progress(
            token, status="done", done=total, taken={str(k): v for k, v in taken.items()}, **base
        )
        return token, taken
    save_progress(token, status="queued", done=0, taken={}, **base)
    hand_over_job.enqueue(token, guide_id, to_guide_id, reason, *actor_args())
    return token, None


register_labels(
    "job", {"guide_distribution.jobs.hand_over_job": _l("Hand over a guide's customers")}
)


@job("low", timeout=3600, retries=0)
def hand_over_job(
    token: str,
    guide_id: int,
    to_guide_id: int | None,
    reason: str,
    actor_id: int | None = None,
    actor_label: str = "",
) -> None:
    """Move a leaving guide's customers in one transaction; idempotent (a second run finds
    nobody left to move)."""
    state = progress(token) or {}
    if state.get("status") in ("done", "failed"):
        return
    total = state.get("total", 0)
    try:
        with acting_as(staff_actor(actor_id, actor_label)):
            taken = handover.hand_over(
                guide_id=guide_id,
                to_guide_id=to_guide_id,
                reason=reason,
                on_progress=lambda n: save_progress(token, status="running", done=n),
            )
    except AppError as exc:
        db.session.rollback()
        save_progress(token, status="failed", error=exc.message)
        return
    except Exception:
        db.session.rollback()
        save_progress(token, status="failed")
        raise
    db.session.flush()
    save_progress(
        token, status="done", done=sum(taken.values()), total=max(total, sum(taken.values())),
        taken={str(k): v for k, v in taken.items()},
    )  # fmt: skip
