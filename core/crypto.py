"""Encryption of secrets at rest (WeChat app secrets, tokens, AES keys)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app, has_app_context
from sqlalchemy import Text, types

_cache: dict[tuple, MultiFernet] = {}


def _derive(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(b"wmb-data-key:" + secret.encode()).digest())


def fernet() -> MultiFernet:
    """The MultiFernet built from DATA_ENCRYPTION_KEYS, or derived from SECRET_KEY."""
    if not has_app_context():
        raise RuntimeError("encryption needs an application context")
    cfg = current_app.config
    keys = tuple(cfg.get("DATA_ENCRYPTION_KEYS") or ()) or (cfg["SECRET_KEY"],)
    if keys not in _cache:
        _cache[keys] = MultiFernet([Fernet(_derive(k)) for k in keys])
    return _cache[keys]


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    try:
        return fernet().decrypt(value.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("cannot decrypt a stored secret: wrong DATA_ENCRYPTION_KEYS?") from exc


class EncryptedText(types.TypeDecorator):
    """A string column encrypted with Fernet; plaintext in Python, ciphertext in the table."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        if value is None or value == "":
            return value
        return encrypt(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        if value is None or value == "":
            return value
        return decrypt(value)


def check_keys() -> None:
    """Decrypt one stored secret, so that wrong DATA_ENCRYPTION_KEYS stop the start-up with a
    clear message instead of failing at the first login. Quiet when nothing is stored yet
    or the database is not reachable (the health check reports that)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from config import ConfigError
    from core.db import db

    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, EncryptedText):
                continue
            raw = table.c[column.name]
            stmt = select(raw.cast(Text)).where(raw.isnot(None), raw.cast(Text) != "").limit(1)
            try:
                with db.engine.connect() as conn:
                    value = conn.execute(stmt).scalar()
            except SQLAlchemyError:
                return
            if value is None:
                continue
            try:
                fernet().decrypt(value.encode())
            except InvalidToken:
                raise ConfigError(
                    "DATA_ENCRYPTION_KEYS cannot decrypt the secrets stored in the database "
                    f"({table.name}.{column.name}). Start with the keys that encrypted them "
                    "(new key first, old keys after it, when rotating)."
                ) from None
            return
