"""Console users: login manager, platform admins, roles, and the per-request brand context.

A console user is either a brand's ``Staff`` (registered by the org package) or a
``PlatformAdmin``, who works on one brand at a time, chosen in the console.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Flask, abort, g, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from core import sessions
from core.audit import Actor, set_actor
from core.db import IdMixin, TimestampMixin, db
from core.tenancy import reset_brand, set_brand

login_manager = LoginManager()
login_manager.login_view = "console.login"
login_manager.session_protection = "strong"

_LOADERS: dict[str, Callable[[int], object | None]] = {}

PLATFORM_ADMIN = "platform_admin"
# Where a platform admin picks the brand to work on (a page of the org package).
BRAND_PICKER = "org.brands"


def register_user_loader(prefix: str, loader: Callable[[int], object | None]) -> None:
    """Let a package provide console users whose ids start with ``prefix:``."""
    _LOADERS[prefix] = loader


@login_manager.user_loader
def _load_user(user_id: str):
    prefix, _, ident = user_id.partition(":")
    loader = _LOADERS.get(prefix)
    if loader is None or not ident.isdigit() or g.get("redis_unavailable"):
        return None
    # A cookie is honoured only while its session is recorded (ended by logout, or by a
    # change to the user's password, role or active flag).
    if not sessions.is_live(sessions.current_sid(), user_id):
        return None
    return loader(int(ident))


def log_in(user) -> None:
    """Start a console session for ``user`` on a fresh cookie."""
    session.clear()
    session[sessions.SESSION_KEY] = sessions.start(user.get_id())
    login_user(user)
    session.permanent = True


def log_out() -> None:
    """End the current console session here and on the server."""
    sessions.end(sessions.current_sid())
    logout_user()
    session.clear()


class PlatformAdmin(IdMixin, TimestampMixin, UserMixin, db.Model):
    """An operator of the platform itself; may work on any brand."""

    __tablename__ = "platform_admin"

    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))

    role = PLATFORM_ADMIN
    store_id = None
    is_platform_admin = True
    SESSION_FIELDS = ("password_hash",)

    def get_id(self) -> str:
        return f"p:{self.id}"

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def brand_id(self) -> int | None:
        return session.get("brand_id")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @classmethod
    def by_username(cls, username: str) -> PlatformAdmin | None:
        return db.session.execute(select(cls).where(cls.username == username)).scalar_one_or_none()


register_user_loader("p", lambda ident: db.session.get(PlatformAdmin, ident))


def has_role(*roles: str) -> bool:
    if not current_user.is_authenticated:
        return False
    if current_user.is_platform_admin:
        return True
    return current_user.role in roles


def roles_required(*roles: str, need_brand: bool = True):
    """Allow only these roles (a platform admin is allowed everywhere in the console)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("console.login", next=request.full_path))
            if not has_role(*roles):
                abort(403)
            if need_brand and g.get("brand_id") is None:
                return redirect(url_for(BRAND_PICKER))
            return view(*args, **kwargs)

        return wrapper

    return decorate


def init_app(app: Flask) -> None:
    login_manager.init_app(app)

    @app.before_request
    def _console_context():
        if not request.path.startswith("/console"):
            return
        if not current_user.is_authenticated:
            return
        bid = current_user.brand_id
        g.brand_id = bid
        g._brand_token = set_brand(bid)
        kind = "platform" if current_user.is_platform_admin else "staff"
        g._actor_token = set_actor(
            Actor(kind, current_user.id, current_user.display_name, request.remote_addr)
        )

    @app.teardown_request
    def _reset_context(_exc):
        token = g.pop("_brand_token", None)
        if token is not None:
            reset_brand(token)
        token = g.pop("_actor_token", None)
        if token is not None:
            from core.audit import _actor

            _actor.reset(token)
