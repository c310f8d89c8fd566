"""Uploaded files: the local folder for real (keys, serving, caching, no traversal), image
checks and re-encoding, and the S3 backend against a small fake S3 endpoint that checks each
request's Signature Version 4."""

from __future__ import annotations

import hashlib
import hmac
import io
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask_babel import force_locale
from PIL import Image

from core import storage
from core.errors import ValidationError
from tests.shop.catalog_helpers import jpeg_with_exif, local_storage, png  # noqa: F401


def test_local_put_url_open_delete(ctx, local_storage):  # noqa: F811
    data = b"\x89PNG fake bytes"
    key = storage.put(data, content_type="image/png", prefix="shop/b1")
    assert key == f"shop/b1/{hashlib.sha256(data).hexdigest()}.png"
    assert storage.put(data, content_type="image/png", prefix="shop/b1") == key  # same content
    assert storage.open(key) == data
    assert (local_storage.root / key).read_bytes() == data
    storage.delete(key)
    with pytest.raises(KeyError):
        storage.open(key)
    storage.delete(key)  # already gone: no error
    for bad in ("../x.png", "shop/../../etc/passwd", "/abs/" + "0" * 64 + ".png", "shop/x.png"):
        with pytest.raises(ValueError):
            storage.open(bad)
    with pytest.raises(ValueError):
        storage.put(data, content_type="text/html", prefix="shop")
    with pytest.raises(ValueError):
        storage.put(data, content_type="image/png", prefix="../up")


def test_served_with_long_caching_and_no_listing_or_traversal(app, client, local_storage):  # noqa: F811
    with app.app_context():
        key = storage.save_image(png(), prefix="shop/b1")
        url = storage.url(key)
    assert key.endswith(".jpg")
    assert url == f"/files/{key}"
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "image/jpeg"  # no transparency: JPEG
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    etag = r.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    (local_storage.root / "secret.txt").write_text("no")
    for path in (
        "/files/shop/b1",
        "/files/shop/b1/",
        "/files/secret.txt",
        "/files/../secret.txt",
        "/files/shop/b1/..%2F..%2Fsecret.txt",
        "/files/%2e%2e/secret.txt",
        f"/files/{key[:-4]}.png",  # no such file
    ):
        assert client.get(path).status_code == 404, path


def test_images_are_checked_and_re_encoded_without_exif(app, local_storage):  # noqa: F811
    with app.app_context():
        key = storage.save_image(jpeg_with_exif(80, 60), prefix="shop/b1")
        img = Image.open(io.BytesIO(storage.open(key)))
        assert img.format == "JPEG"
        assert img.size == (60, 80)  # turned upright by its orientation tag
        assert not img.getexif()  # camera, GPS and orientation are gone
        alpha = storage.save_image(png(mode="RGBA", colour=(0, 0, 0, 0)), prefix="shop/b1")
        assert alpha.endswith(".png")
        with force_locale("zh"):
            for data, message in (
                (b"<svg onload=alert(1)>", "文件不是 JPEG、PNG、WebP 或 GIF 图片。"),
                (png(8, 8), "图片每边须在 16 到 4096 像素之间。"),
                (png(5000, 20), "图片每边须在 16 到 4096 像素之间。"),
                (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "文件不是 JPEG、PNG、WebP 或 GIF 图片。"),
            ):
                with pytest.raises(ValidationError) as info:
                    storage.save_image(data, prefix="shop/b1")
                assert (info.value.field, info.value.message) == ("images", message)
            app.config["IMAGE_MAX_BYTES"] = 1000
            try:
                with pytest.raises(ValidationError) as info:
                    storage.save_image(png(400, 400) + b"\0" * 2000, prefix="shop/b1")
                assert info.value.message == "图片超过 0.000953674 MB。"
            finally:
                app.config["IMAGE_MAX_BYTES"] = 5 * 1024 * 1024
    assert sorted(p.name for p in (local_storage.root / "shop/b1").iterdir()) == sorted(
        [key.rsplit("/", 1)[1], alpha.rsplit("/", 1)[1]]
    )


# --- S3 -------------------------------------------------------------------------------------

ACCESS, SECRET, REGION, BUCKET = "AKIDTEST", "s3cr3t/key+value", "cn-north-1", "media"


class FakeS3(BaseHTTPRequestHandler):
    """Path-style S3: PUT, GET and DELETE of objects, each request's SigV4 recomputed from
    what arrived and compared; a wrong signature answers 403 SignatureDoesNotMatch."""

    objects: dict[str, tuple[bytes, str]] = {}
    seen: list[tuple[str, str]] = []

    def log_message(self, *args):
        pass

    def _expected_signature(self, body: bytes) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return None
        fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
        cred = fields["Credential"].split("/")
        if cred[0] != ACCESS or cred[2:] != [REGION, "s3", "aws4_request"]:
            return None
        if self.headers["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest():
            return None
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return None
        parts = urllib.parse.urlsplit(self.path)
        canonical = "\n".join(
            [
                self.command,
                parts.path,
                parts.query,
                "".join(f"{h}:{self.headers[h].strip()}\n" for h in signed),
                ";".join(signed),
                hashlib.sha256(body).hexdigest(),
            ]
        )
        amz_date = self.headers["x-amz-date"]
        scope = f"{cred[1]}/{REGION}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        k = hmac.new(f"AWS4{SECRET}".encode(), cred[1].encode(), hashlib.sha256).digest()
        for part in (REGION, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        good = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        return good if hmac.compare_digest(good, fields["Signature"]) else None

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path))
        if self._expected_signature(body) is None:
            self.send_response(403)
            self.end_headers()
            self.wfile.write(b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
            return
        key = urllib.parse.unquote(self.path)
        if self.command == "PUT":
            self.objects[key] = (body, self.headers["Content-Type"])
            self.send_response(200)
            self.end_headers()
        elif self.command == "GET":
            if key not in self.objects:
                self.send_response(404)
                self.end_headers()
                return
            data, ctype = self.objects[key]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.objects.pop(key, None)
            self.send_response(204)
            self.end_headers()

    do_PUT = do_GET = do_DELETE = _handle  # noqa: N815


@pytest.fixture
def fake_s3():
    FakeS3.objects, FakeS3.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_s3_backend_signs_every_request(app, fake_s3):
    store = storage.build(
        {
            "STORAGE_BACKEND": "s3",
            "STORAGE_S3_ENDPOINT": fake_s3,
            "STORAGE_S3_BUCKET": BUCKET,
            "STORAGE_S3_ACCESS_KEY": ACCESS,
            "STORAGE_S3_SECRET_KEY": SECRET,
            "STORAGE_S3_REGION": REGION,
            "STORAGE_PUBLIC_URL": "https://cdn.example.com/media/",
        }
    )
    assert isinstance(store, storage.S3Storage)
    saved = app.extensions["storage"]
    app.extensions["storage"] = store
    try:
        with app.app_context():
            key = storage.save_image(png(), prefix="shop/b9")
            assert storage.url(key) == f"https://cdn.example.com/media/{key}"
            stored, ctype = FakeS3.objects[f"/{BUCKET}/{key}"]
            assert ctype == "image/jpeg" and Image.open(io.BytesIO(stored)).size == (64, 48)
            assert storage.open(key) == stored
            storage.delete(key)
            with pytest.raises(KeyError):
                storage.open(key)
    finally:
        app.extensions["storage"] = saved
    assert [m for m, _p in FakeS3.seen] == ["PUT", "GET", "DELETE", "GET"]
    # A wrong secret is refused by the store, and the upload fails loudly.
    wrong = storage.S3Storage(
        endpoint=fake_s3, bucket=BUCKET, access_key=ACCESS, secret_key="nope", region=REGION
    )
    with pytest.raises(storage.StorageError):
        wrong.put(b"x", content_type="image/png", prefix="shop")


def test_s3_signature_matches_the_aws_documented_example():
    """AWS's published GET Object example (docs: sig-v4-header-based-auth) signs to the
    documented value."""
    import datetime as dt

    s3 = storage.S3Storage(
        endpoint="https://examplebucket.s3.amazonaws.com",
        bucket="",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    headers = s3.sign(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        headers={"Range": "bytes=0-9"},
        now=dt.datetime(2013, 5, 24, tzinfo=dt.UTC),
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_s3_configuration_is_checked_at_start_up():
    from config import Config, ConfigError

    base = {"DATABASE_URL": "postgresql://x@h/db", "REDIS_URL": "redis://h/0"}
    with pytest.raises(ConfigError, match="STORAGE_S3_BUCKET"):
        Config({**base, "STORAGE_BACKEND": "s3", "STORAGE_S3_ENDPOINT": "https://s3"})
    with pytest.raises(ConfigError):
        Config({**base, "STORAGE_BACKEND": "ftp"})
    assert Config(base).STORAGE_BACKEND == "local"


def test_pages_may_show_images_from_the_s3_public_url(app, client):
    app.config["STORAGE_PUBLIC_URL"] = "https://cdn.example.com/media"
    try:
        csp = client.get("/console/login").headers["Content-Security-Policy"]
    finally:
        app.config["STORAGE_PUBLIC_URL"] = ""
    assert "img-src 'self' data: blob: https://cdn.example.com;" in csp
    csp = client.get("/console/login").headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:;" in csp


def test_a_store_that_cannot_write_answers_503_and_the_product_form_says_try_again(tmp_path, brand):
    """A full disk or an unwritable folder is the store failing, not a bug: the upload is
    refused as "try again" on the product form, and any other page gets a 503."""
    from tests.support.apps import build_app

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the uploads folder should be")
    local = storage.LocalStorage(str(blocked))
    with pytest.raises(storage.StorageError):
        local.put(b"x", content_type="image/png", prefix="shop")

    served = build_app(STORAGE_DIR=str(blocked))
    served.add_url_rule(
        "/_store_probe",
        "store_probe",
        lambda: storage.put(b"x", content_type="image/png", prefix="t"),
    )
    web = served.test_client()
    page = web.get("/_store_probe")
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert "服务暂时不可用" in page.get_data(as_text=True)
    api = web.get("/_store_probe", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.get_json()["error"]["code"] == "unavailable"
