"""Settings, read from environment variables only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    return int(value)


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"  # noqa: S105 - refused in production


class ConfigError(RuntimeError):
    """Raised at start-up when the environment is not usable."""


class Config:
    """Configuration built from an environment mapping."""

    TESTING = False

    def __init__(self, env: dict[str, str] | None = None):
        env = dict(os.environ if env is None else env)
        self.ENV = env.get("APP_ENV", "development")
        self.PRODUCTION = self.ENV == "production"
        secret = env.get("SECRET_KEY", "")
        if self.PRODUCTION and (not secret or secret == DEV_SECRET_KEY or len(secret) < 32):
            raise ConfigError(
                "SECRET_KEY is not set, too short, or the development value. Production "
                "start-up refuses to run without a real one: set SECRET_KEY to a long random "
                "string (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        secret = secret or DEV_SECRET_KEY
        self.SECRET_KEY = secret
        # Keys that encrypt WeChat secrets at rest; the first encrypts, all decrypt (rotation).
        self.DATA_ENCRYPTION_KEYS = [
            k.strip() for k in env.get("DATA_ENCRYPTION_KEYS", "").split(",") if k.strip()
        ]
        instance = Path(env.get("INSTANCE_PATH", BASE_DIR / "instance"))
        self.INSTANCE_PATH = str(instance)
        # Files written by export jobs, downloadable for EXPORT_TTL_HOURS after they are done.
        self.EXPORTS_DIR = env.get("EXPORTS_DIR") or str(instance / "exports")
        self.EXPORT_TTL_HOURS = float(env.get("EXPORT_TTL_HOURS") or 24)
        database_url = env.get("DATABASE_URL", "")
        if not database_url:
            raise ConfigError(
                "DATABASE_URL is not set. `make run` starts an embedded PostgreSQL and sets it; "
                "otherwise point it at PostgreSQL (postgresql://user@host:5432/dbname)."
            )
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(database_url)
        if not self.SQLALCHEMY_DATABASE_URI.startswith("postgresql+psycopg://"):
            raise ConfigError("DATABASE_URL must be a PostgreSQL URL (postgresql://...).")
        # No ping per checkout (a round trip on every request): connections are recycled
        # instead. Per connection: no JIT (it costs more than it saves on these short
        # queries) and no transaction left idle for long.
        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_pre_ping": False,
            "pool_recycle": _int(env.get("DB_POOL_RECYCLE"), 300),
            "pool_size": _int(env.get("DB_POOL_SIZE"), 10),
            "max_overflow": _int(env.get("DB_MAX_OVERFLOW"), 20),
            "connect_args": {
                "options": "-c jit=off -c idle_in_transaction_session_timeout="
                + str(_int(env.get("DB_IDLE_IN_TRANSACTION_MS"), 300_000))
            },
        }
        # Each transaction of a console request may run this long per statement.
        self.CONSOLE_STATEMENT_TIMEOUT_MS = _int(env.get("CONSOLE_STATEMENT_TIMEOUT_MS"), 30_000)
        # Rows recorded in the last N seconds stay out of the report rollups (core.rollups).
        self.ROLLUP_MARGIN_SECONDS = _int(env.get("ROLLUP_MARGIN_SECONDS"), 120)
        self.REDIS_URL = env.get("REDIS_URL", "")
        if not self.REDIS_URL:
            raise ConfigError(
                "REDIS_URL is not set. `make run` starts an embedded Redis and sets it; "
                "otherwise point it at a Redis server (redis://host:6379/0)."
            )
        # Jobs go through the outbox to RQ workers. Inline (run right after the enqueuing
        # commit, in-process) only where a test asks for it.
        self.JOBS_INLINE = _bool(env.get("JOBS_INLINE"), default=False)
        self.WECHAT_API_BASE = env.get("WECHAT_API_BASE", "http://127.0.0.1:5000/sandbox/wechat")
        self.WECHAT_PAY_API_BASE = env.get(
            "WECHAT_PAY_API_BASE", self.WECHAT_API_BASE.rstrip("/") + "/pay"
        )
        self.WECHAT_TIMEOUT = float(env.get("WECHAT_TIMEOUT", "5"))
        self.PUBLIC_URL = env.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
        self.SANDBOX_ENABLED = _bool(
            env.get("WECHAT_SANDBOX"), default="/sandbox/" in self.WECHAT_API_BASE
        )
        # The sandbox mounted in this app is called in-process rather than over HTTP.
        self.WECHAT_SANDBOX_INPROCESS = _bool(
            env.get("WECHAT_SANDBOX_INPROCESS"),
            default=self.SANDBOX_ENABLED
            and self.WECHAT_API_BASE.startswith(self.PUBLIC_URL + "/sandbox/"),
        )
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool(env.get("SECURE_COOKIES"), default=self.PRODUCTION)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.PERMANENT_SESSION_LIFETIME = _int(env.get("SESSION_LIFETIME_SECONDS"), 8 * 3600)
        self.WTF_CSRF_ENABLED = True
        self.WTF_CSRF_TIME_LIMIT = None
        self.MAX_CONTENT_LENGTH = _int(env.get("MAX_CONTENT_LENGTH"), 16 * 1024 * 1024)
        self.BABEL_DEFAULT_LOCALE = env.get("DEFAULT_LOCALE", "zh")
        self.BABEL_DEFAULT_TIMEZONE = "UTC"
        self.LANGUAGES = ["zh", "en"]
        self.LOGIN_MAX_FAILURES = _int(env.get("LOGIN_MAX_FAILURES"), 5)
        self.LOGIN_LOCK_SECONDS = _int(env.get("LOGIN_LOCK_SECONDS"), 15 * 60)
        self.LOGIN_IP_FAILURES_PER_MINUTE = _int(env.get("LOGIN_IP_FAILURES_PER_MINUTE"), 20)
        self.LOG_LEVEL = env.get("LOG_LEVEL", "INFO")
        # Plain lines for a person at a terminal, JSON lines for a log collector.
        self.LOG_JSON = _bool(env.get("LOG_JSON"), default=not sys.stderr.isatty())
        self.PROMETHEUS_MULTIPROC_DIR = env.get("PROMETHEUS_MULTIPROC_DIR") or None
        # /metrics answers only with this bearer token (without one: only to this machine).
        self.METRICS_TOKEN = env.get("METRICS_TOKEN", "")
        if self.PRODUCTION and not self.METRICS_TOKEN:
            raise ConfigError("METRICS_TOKEN is not set: /metrics would be open to anyone.")
        # At start-up, decrypt one stored secret to prove DATA_ENCRYPTION_KEYS are right.
        self.CHECK_DATA_KEYS = _bool(env.get("CHECK_DATA_KEYS"), default=True)
        # Member activation (members.sms, members.posters): SMS provider, per-IP code limit
        # per hour (raise it behind a proxy or for load tests), a CJK font for QR posters.
        self.SMS_SENDER = env.get("SMS_SENDER", "sandbox")
        self.SMS_IP_LIMIT = _int(env.get("SMS_IP_LIMIT"), 20)
        self.POSTER_FONT = env.get("POSTER_FONT") or None
        self.MP_SESSION_SECONDS = _int(env.get("MP_SESSION_SECONDS"), 2 * 24 * 3600)
        # Games (games.services): plays per member per 10 s, plays per network address per
        # minute (raise it behind a proxy or for load tests), and the plays per minute from
        # one address that the console flags as a burst.
        self.GAMES_MEMBER_RATE = _int(env.get("GAMES_MEMBER_RATE"), 10)
        self.GAMES_IP_RATE = _int(env.get("GAMES_IP_RATE"), 600)
        self.GAMES_FLAG_PER_MINUTE = _int(env.get("GAMES_FLAG_PER_MINUTE"), 120)
        # Uploaded files (core.storage): a local folder by default, or an S3-compatible store.
        self.STORAGE_BACKEND = env.get("STORAGE_BACKEND", "local").strip().lower() or "local"
        if self.STORAGE_BACKEND not in ("local", "s3"):
            raise ConfigError("STORAGE_BACKEND must be local or s3.")
        self.STORAGE_DIR = env.get("STORAGE_DIR") or str(instance / "uploads")
        self.STORAGE_S3_ENDPOINT = env.get("STORAGE_S3_ENDPOINT", "")
        self.STORAGE_S3_BUCKET = env.get("STORAGE_S3_BUCKET", "")
        self.STORAGE_S3_REGION = env.get("STORAGE_S3_REGION", "") or "us-east-1"
        self.STORAGE_S3_ACCESS_KEY = env.get("STORAGE_S3_ACCESS_KEY", "")
        self.STORAGE_S3_SECRET_KEY = env.get("STORAGE_S3_SECRET_KEY", "")
        self.STORAGE_PUBLIC_URL = env.get("STORAGE_PUBLIC_URL", "")
        if self.STORAGE_BACKEND == "s3":
            missing = [
                name
                for name in (
                    "STORAGE_S3_ENDPOINT",
                    "STORAGE_S3_BUCKET",
                    "STORAGE_S3_ACCESS_KEY",
                    "STORAGE_S3_SECRET_KEY",
                )
                if not getattr(self, name)
            ]
            if missing:
                raise ConfigError(f"STORAGE_BACKEND=s3 needs {', '.join(missing)}.")
        self.IMAGE_MAX_BYTES = _int(env.get("IMAGE_MAX_BYTES"), 5 * 1024 * 1024)
        self.IMAGE_MAX_SIDE = _int(env.get("IMAGE_MAX_SIDE"), 4096)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in dir(self) if k.isupper()}


class TestConfig(Config):
    """Configuration for the test suite: PostgreSQL and Redis from the environment."""

    TESTING = True

    def __init__(self, env: dict[str, str] | None = None):
        env = dict(os.environ if env is None else env)
        env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/wmb_test")
        env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
        env.setdefault("SECRET_KEY", "test-secret-key")
        env.setdefault("WECHAT_SANDBOX", "1")
        # Nothing listens there: a test must point WeChat at its own sandbox server, never at
        # a development server that happens to run on port 5000.
        env.setdefault("WECHAT_API_BASE", "http://127.0.0.1:9/sandbox/wechat")
        env.setdefault("LOG_JSON", "0")
        env.setdefault("LOG_LEVEL", "WARNING")
        env.setdefault("CHECK_DATA_KEYS", "0")
        super().__init__(env)
        self.TESTING = True
        # Tests reach the sandbox over real HTTP unless a test asks otherwise.
        self.WECHAT_SANDBOX_INPROCESS = _bool(env.get("WECHAT_SANDBOX_INPROCESS"), default=False)
