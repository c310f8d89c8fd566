"""Uploaded files (product images, ...) behind one interface, whatever holds them.

``put(data, content_type=, prefix=) -> key``, ``url(key)``, ``open(key) -> bytes`` and
``delete(key)`` work the same on both backends:

* ``local`` (the default): files under ``STORAGE_DIR`` (``instance/uploads``), served by the
  app at ``/files/<key>`` with long caching headers (a key never changes content), no
  directory listing and no path outside the folder;
* ``s3``: any S3-compatible store (AWS S3, Alibaba OSS, Tencent COS, MinIO) at
  ``STORAGE_S3_ENDPOINT`` / ``STORAGE_S3_BUCKET`` with ``STORAGE_S3_ACCESS_KEY`` /
  ``STORAGE_S3_SECRET_KEY``, through signed requests (AWS Signature Version 4); pages link to
  ``STORAGE_PUBLIC_URL`` + key (a CDN or the bucket's public address).

Keys are ``<prefix>/<sha256 of the content>.<ext>``: the same image uploaded twice is stored
once, and a key read from the database can be checked against ``KEY_PATTERN`` before it goes
near a path or a URL. ``save_image`` validates an image with Pillow (type, bytes,
dimensions), turns it upright and re-encodes it, which drops EXIF (camera, GPS).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import logging
import os
import re
import urllib.parse
from pathlib import Path

import requests
from flask import Blueprint, Flask, abort, current_app, has_request_context, send_file, url_for
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

from core import errors
from core.errors import ValidationError

KEY_PATTERN = re.compile(
    r"^[a-z0-9][a-z0-9_-]{0,40}(/[a-z0-9][a-z0-9_-]{0,40}){0,3}/[0-9a-f]{64}\.(jpg|png|webp)$"
)
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
CONTENT_TYPES = {ext: ctype for ctype, ext in EXTENSIONS.items()}
PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}(/[a-z0-9][a-z0-9_-]{0,40}){0,3}$")
CACHE_SECONDS = 365 * 24 * 3600
# A failed store is usually back within the minute (a network blip, a disk being freed).
STORAGE_RETRY_AFTER = 30

log = logging.getLogger(__name__)

# Images: what an upload may be before it is decoded, and after.
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MIN_SIDE = 16


class StorageError(RuntimeError):
    """The store did not accept or return a file."""


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValueError("not a storage key")
    return key


def make_key(data: bytes, *, content_type: str, prefix: str) -> str:
    """``<prefix>/<sha256>.<ext>`` for this content."""
    ext = EXTENSIONS.get(content_type)
    if ext is None:
        raise ValueError(f"unsupported content type {content_type!r}")
    if not PREFIX_PATTERN.match(prefix or ""):
        raise ValueError(f"bad storage prefix {prefix!r}")
    return f"{prefix}/{hashlib.sha256(data).hexdigest()}.{ext}"


class LocalStorage:
    """Files in a folder on this machine, served by the app."""

    def __init__(self, root: str):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / _check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError("key outside the storage folder")
        return path

    def put(self, data: bytes, *, content_type: str, prefix: str) -> str:
        key = make_key(data, content_type=content_type, prefix=prefix)
        path = self._path(key)
        if path.exists():
            return key  # same content, same key
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:  # a full disk, a read-only or missing folder
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise StorageError(f"PUT {key}: {type(exc).__name__}") from exc
        return key

    def url(self, key: str) -> str:
        if has_request_context():
            return url_for("storage.file", key=_check_key(key))
        return f"/files/{_check_key(key)}"  # the CLI (demo) and jobs

    def open(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StorageError(f"GET {key}: {type(exc).__name__}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"DELETE {key}: {type(exc).__name__}") from exc

    def file_path(self, key: str) -> Path:
        return self._path(key)


class S3Storage:
    """An S3-compatible bucket, reached with requests signed by AWS Signature Version 4
    (path-style URLs: ``<endpoint>/<bucket>/<key>``, what every compatible store accepts)."""

    service = "s3"

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        public_url: str = "",
        timeout: float = 10.0,
    ):
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.public_url = (public_url or f"{self.endpoint}/{bucket}").rstrip("/")
        self.timeout = timeout

    def _object_url(self, key: str) -> str:
        return f"{self.endpoint}/{self.bucket}/{urllib.parse.quote(_check_key(key))}"

    def sign(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        now: dt.datetime | None = None,
    ) -> dict[str, str]:
        """The request's headers with its SigV4 ``Authorization``."""
        now = now or dt.datetime.now(dt.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        parts = urllib.parse.urlsplit(url)
        payload_hash = hashlib.sha256(body).hexdigest()
        out = {k.lower(): v for k, v in (headers or {}).items()}
        out["host"] = parts.netloc
        out["x-amz-date"] = amz_date
        out["x-amz-content-sha256"] = payload_hash
        signed = sorted(out)
        canonical_headers = "".join(f"{h}:{' '.join(str(out[h]).split())}\n" for h in signed)
        query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
            for k, v in query
        )
        canonical = "\n".join(
            [
                method.upper(),
                parts.path or "/",
                canonical_query,
                canonical_headers,
                ";".join(signed),
                payload_hash,
            ]
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        signature = hmac.new(
            signing_key(self.secret_key, day, self.region, self.service),
            to_sign.encode(),
            hashlib.sha256,
        ).hexdigest()
        out["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}"
        )
        return out

    def _request(self, method: str, key: str, *, body: bytes = b"", headers=None):
        url = self._object_url(key)
        signed = self.sign(method, url, body=body, headers=headers)
        try:
            return requests.request(
                method, url, data=body or None, headers=signed, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise StorageError(f"{method} {key}: {type(exc).__name__}") from exc

    def put(self, data: bytes, *, content_type: str, prefix: str) -> str:
        key = make_key(data, content_type=content_type, prefix=prefix)
        r = self._request(
            "PUT",
            key,
            body=data,
            headers={
                "content-type": content_type,
                "cache-control": f"public, max-age={CACHE_SECONDS}, immutable",
            },
        )
        if r.status_code != 200:
            raise StorageError(f"PUT {key}: HTTP {r.status_code}")
        return key

    def url(self, key: str) -> str:
        return f"{self.public_url}/{_check_key(key)}"

    def open(self, key: str) -> bytes:
        r = self._request("GET", key)
        if r.status_code == 404:
            raise KeyError(key)
        if r.status_code != 200:
            raise StorageError(f"GET {key}: HTTP {r.status_code}")
        return r.content

    def delete(self, key: str) -> None:
        r = self._request("DELETE", key)
        if r.status_code not in (200, 204, 404):
            raise StorageError(f"DELETE {key}: HTTP {r.status_code}")


def signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    """SigV4's derived key for a day, region and service."""
    k = hmac.new(("AWS4" + secret_key).encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def build(config) -> LocalStorage | S3Storage:
    """The backend the configuration names."""
    if config.get("STORAGE_BACKEND", "local") == "s3":
        return S3Storage(
            endpoint=config["STORAGE_S3_ENDPOINT"],
            bucket=config["STORAGE_S3_BUCKET"],
            access_key=config["STORAGE_S3_ACCESS_KEY"],
            secret_key=config["STORAGE_S3_SECRET_KEY"],
            region=config.get("STORAGE_S3_REGION") or "us-east-1",
            public_url=config.get("STORAGE_PUBLIC_URL") or "",
        )
    return LocalStorage(
        config.get("STORAGE_DIR") or os.path.join(config["INSTANCE_PATH"], "uploads")
    )


def backend() -> LocalStorage | S3Storage:
    """The app's storage backend."""
    return current_app.extensions["storage"]


def put(data: bytes, *, content_type: str, prefix: str) -> str:
    """Store ``data`` under a key made of its hash; returns the key."""
    return backend().put(data, content_type=content_type, prefix=prefix)


def url(key: str) -> str:
    """Where a browser gets the file."""
    return backend().url(key)


def open(key: str) -> bytes:  # noqa: A001 - the interface's name
    """The file's bytes (KeyError when there is none)."""
    return backend().open(key)


def delete(key: str) -> None:
    """Remove the file (no error when it is already gone)."""
    backend().delete(key)


def is_key(value) -> bool:
    return isinstance(value, str) and bool(KEY_PATTERN.match(value))


# --- images ----------------------------------------------------------------------------------

BAD_IMAGE = _l("The file is not a JPEG, PNG, WebP or GIF image.")


def save_image(data: bytes, *, prefix: str, field: str = "images") -> str:
    """Validate an uploaded image, re-encode it (upright, without EXIF) and store it.

    Refused with a ValidationError on ``field``: anything Pillow does not read as JPEG, PNG,
    WebP or GIF, more than ``IMAGE_MAX_BYTES``, a side under 16 or over ``IMAGE_MAX_SIDE``
    pixels. PNG and WebP with transparency stay PNG; everything else becomes JPEG.
    """
    cfg = current_app.config
    max_bytes = int(cfg.get("IMAGE_MAX_BYTES") or 5 * 1024 * 1024)
    max_side = int(cfg.get("IMAGE_MAX_SIDE") or 4096)
    if not data:
        raise ValidationError(BAD_IMAGE, field=field)
    if len(data) > max_bytes:
        raise ValidationError(
            _l("The image is larger than %(mb)s MB.", mb=f"{max_bytes / 1024 / 1024:g}"),
            field=field,
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            width, height = probe.size
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError(BAD_IMAGE, field=field) from None
    if fmt not in IMAGE_FORMATS:
        raise ValidationError(BAD_IMAGE, field=field)
    if min(width, height) < MIN_SIDE or max(width, height) > max_side:
        raise ValidationError(
            _l(
                "The image must be between %(low)d and %(high)d pixels on each side.",
                low=MIN_SIDE,
                high=max_side,
            ),
            field=field,
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            img = ImageOps.exif_transpose(img)
            alpha = img.mode in ("RGBA", "LA", "PA") or (
                img.mode == "P" and "transparency" in img.info
            )
            out = io.BytesIO()
            if alpha and fmt in ("PNG", "WEBP", "GIF"):
                img.convert("RGBA").save(out, format="PNG", optimize=True)
                ctype = "image/png"
            else:
                img.convert("RGB").save(out, format="JPEG", quality=88, optimize=True)
                ctype = "image/jpeg"
    except (OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError(BAD_IMAGE, field=field) from None
    return put(out.getvalue(), content_type=ctype, prefix=prefix)


# --- serving the local folder ---------------------------------------------------------------

bp = Blueprint("storage", __name__)


@bp.get("/files/<path:key>")
def file(key: str):
    """A stored file of the local backend: only well-formed keys, never a folder."""
    store = backend()
    if not isinstance(store, LocalStorage) or not is_key(key):
        abort(404)
    path = store.file_path(key)
    if not path.is_file():
        abort(404)
    response = send_file(
        path,
        mimetype=CONTENT_TYPES[key.rsplit(".", 1)[1]],
        conditional=True,
        etag=True,
        max_age=CACHE_SECONDS,
    )
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _unavailable(exc: StorageError):
    """The file store failed (unreachable, refused, a full disk): 503, nothing committed."""
    log.error("storage unavailable: %s", exc)
    return errors.unavailable(retry_after=STORAGE_RETRY_AFTER)


def init_app(app: Flask) -> None:
    app.register_error_handler(StorageError, _unavailable)
    app.extensions["storage"] = build(app.config)
    app.register_blueprint(bp)
    app.add_template_global(url, "storage_url")
