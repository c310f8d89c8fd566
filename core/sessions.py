"""Console sessions that end: each login gets a server-side id, checked on every request.

The signed session cookie alone cannot be taken back: a copy of it would work until it
expires. So a login records a random session id in Redis (under the user's id, with the
session's lifetime) and puts it in the cookie; the user loader accepts the cookie only while
that id is still recorded for that user. Logout forgets the id; a change to a user's
password, role, store or active flag forgets all of that user's ids (``end_all``), through
a flush hook on any model that lists its ``SESSION_FIELDS``.
"""

from __future__ import annotations

import secrets

from flask import current_app, has_request_context, session
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from core.redis import get_redis, key

SESSION_KEY = "_sid"


def _ttl() -> int:
    return int(current_app.config["PERMANENT_SESSION_LIFETIME"])


def _id_key(sid: str) -> str:
    return key(None, "console-session", sid)


def _user_key(user_id: str) -> str:
    return key(None, "console-sessions-of", user_id)


def start(user_id: str) -> str:
    """Record a new session of ``user_id`` (Flask-Login's id, e.g. ``s:12``); returns its id."""
    sid = secrets.token_urlsafe(32)
    ttl = _ttl()
    pipe = get_redis().pipeline()
    pipe.set(_id_key(sid), user_id, ex=ttl)
    pipe.sadd(_user_key(user_id), sid)
    pipe.expire(_user_key(user_id), ttl)
    pipe.execute()
    return sid


def is_live(sid: str | None, user_id: str) -> bool:
    """Whether ``sid`` is a recorded session of ``user_id``."""
    if not sid:
        return False
    owner = get_redis().get(_id_key(sid))
    return owner is not None and owner.decode() == user_id


def end(sid: str | None) -> None:
    """Forget one session (logout)."""
    if not sid:
        return
    r = get_redis()
    owner = r.get(_id_key(sid))
    pipe = r.pipeline()
    pipe.delete(_id_key(sid))
    if owner is not None:
        pipe.srem(_user_key(owner.decode()), sid)
    pipe.execute()


def end_all(user_id: str, *, keep: str | None = None) -> None:
    """Forget every session of ``user_id`` but ``keep`` (the one making the change)."""
    r = get_redis()
    sids = [s.decode() for s in r.smembers(_user_key(user_id))]
    pipe = r.pipeline()
    for sid in sids:
        if sid != keep:
            pipe.delete(_id_key(sid))
            pipe.srem(_user_key(user_id), sid)
    pipe.execute()


def current_sid() -> str | None:
    return session.get(SESSION_KEY) if has_request_context() else None


@event.listens_for(Session, "after_flush")
def _end_sessions_on_change(db_session: Session, _flush_context) -> None:
    """A changed password, role, store or active flag ends that user's other sessions.

    Runs inside the transaction, before its commit: if Redis cannot be reached, the change
    is not committed either.
    """
    for obj in db_session.dirty:
        fields = getattr(type(obj), "SESSION_FIELDS", None)
        if not fields:
            continue
        state = inspect(obj)
        if any(state.attrs[f].history.has_changes() for f in fields):
            user_id = obj.get_id()
            keep = current_sid()
            if keep is not None and not is_live(keep, user_id):
                keep = None
            end_all(user_id, keep=keep)
