"""Exports as jobs (core.exports): the job writes the file with progress, only the user who
asked (or a brand admin) of the same brand downloads it until it expires, housekeeping
deletes expired files, a failure shows as failed."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import select, update

from core import audit, exports, housekeeping, jobs
from core.db import db, utcnow
from core.tenancy import use_brand
from tests import factories as f
from tests.support.exports import export_row, run_export_jobs

ROWS = 7


def _write_rows(export, out, progress) -> int:
    n = int(export.params["rows"])
    progress(0, n)
    for i in range(n):
        out.write(f"{i}\n".encode())
        progress(i + 1)
    if export.params.get("fail"):
        raise RuntimeError("the database went away")
    return n


@pytest.fixture(autouse=True)
def _test_kind(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "EXPORTS_DIR", str(tmp_path))
    exports.register_export("test_rows", label="测试", write=_write_rows)
    yield
    exports.KINDS.pop("test_rows", None)


def _ask(brand, staff, **params) -> int:
    with use_brand(brand.id), audit.acting_as(audit.Actor("staff", staff.id, staff.name)):
        row = exports.request_export(
            kind="test_rows",
            params={"rows": ROWS, **params},
            requested_by=staff.get_id(),
            requested_by_label=staff.name,
            filename="rows.csv",
        )
        db.session.commit()
        return row.id


def test_the_job_writes_the_file_with_progress_and_the_owner_downloads_it(client, ctx):
    b = f.brand()
    manager = f.staff(b, "store_manager", f.store(b))
    export_id = _ask(b, manager)
    row = export_row(export_id)
    assert (row.status, row.rows_done, row.path) == ("queued", 0, None)
    assert row.expires_at - row.created_at == dt.timedelta(hours=24)

    assert run_export_jobs() == ["done"]
    row = export_row(export_id)
    assert (row.status, row.rows_done, row.rows_expected, row.percent) == ("done", ROWS, ROWS, 100)
    assert row.size_bytes == len("".join(f"{i}\n" for i in range(ROWS)))
    assert abs(row.expires_at - (row.finished_at + dt.timedelta(hours=24))) < dt.timedelta(
        seconds=1
    )
    assert run_export_jobs() == []  # done: a second delivery would find nothing to do
    with use_brand(b.id):
        jobs.enqueue(exports.run_export, export_id)
        db.session.commit()
    run_export_jobs()
    assert export_row(export_id).path == row.path  # left alone, not written again

    f.login(client, b, manager)
    r = client.get(f"/console/exports/{export_id}/download")
    assert r.status_code == 200 and r.get_data() == b"".join(f"{i}\n".encode() for i in range(7))
    assert (
        r.headers["Content-Disposition"].startswith("attachment")
        and "rows.csv" in r.headers["Content-Disposition"]
    )
    entries = db.session.execute(select(audit.AuditLog.action).order_by(audit.AuditLog.id))
    assert list(entries.scalars()) == ["export", "download"]


def test_another_brand_never_sees_the_export(client, ctx):
    b, other = f.brand(), f.brand()
    admin = f.staff(b, "brand_admin")
    export_id = _ask(b, admin)
    run_export_jobs()
    other_admin = f.staff(other, "brand_admin")
    f.login(client, other, other_admin)
    assert client.get(f"/console/exports/{export_id}/download").status_code == 404
    assert client.get("/console/exports/mine.json").json == {"exports": []}
    assert client.get("/console/exports/999999/download").status_code == 404


def test_an_expired_export_answers_404_and_housekeeping_deletes_it(client, ctx, app):
    b = f.brand()
    admin = f.staff(b, "brand_admin")
    export_id, kept_id = _ask(b, admin), _ask(b, admin)
    run_export_jobs()
    row = export_row(export_id)
    path = exports.file_path(row)
    assert os.path.isfile(path)
    db.session.execute(
        update(exports.ExportFile)
        .where(exports.ExportFile.id == export_id)
        .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        .execution_options(all_brands=True)
    )
    db.session.commit()
    f.login(client, b, admin)
    assert client.get(f"/console/exports/{export_id}/download").status_code == 404
    (item,) = [e for e in client.get("/console/exports/mine.json").json["exports"]
               if e["id"] == export_id]  # fmt: skip
    assert (item["status_label"], item["download_url"]) == ("已过期", None)

    stale = os.path.join(os.path.dirname(path), "99-dead.csv.part")  # a killed worker's
    fresh = os.path.join(os.path.dirname(path), "98-running.csv.part")  # a running job's
    for partial in (stale, fresh):
        with open(partial, "wb") as fh:
            fh.write(b"1\n")
    old = (utcnow() - dt.timedelta(days=2)).timestamp()
    os.utime(stale, (old, old))
    assert housekeeping.purge_expired_exports() == 1
    db.session.commit()
    assert not os.path.exists(path)
    assert not os.path.exists(stale) and os.path.exists(fresh)
    left = select(exports.ExportFile.id).execution_options(all_brands=True)
    assert list(db.session.execute(left).scalars()) == [kept_id]
    assert os.path.isfile(exports.file_path(export_row(kept_id)))  # not expired: kept
    assert client.get(f"/console/exports/{kept_id}/download").status_code == 200


def test_a_failed_export_shows_as_failed_and_leaves_no_file(client, ctx, app):
    b = f.brand()
    admin = f.staff(b, "brand_admin")
    export_id = _ask(b, admin, fail=True)
    assert run_export_jobs() == ["error"]
    row = export_row(export_id)
    assert (row.status, row.path, row.rows_done) == ("failed", None, ROWS)
    assert "the database went away" in row.error
    folder = os.path.join(exports.exports_dir(), str(b.id))
    assert not [n for n in os.listdir(folder) if n.startswith(f"{export_id}-")]
    outbox = db.session.execute(select(jobs.OutboxJob)).scalar_one()
    assert outbox.status == jobs.FAILED  # listed under Jobs, where it can be sent again

    f.login(client, b, admin)
    (item,) = client.get("/console/exports/mine.json").json["exports"]
    assert item["failed"] and item["finished"] and item["status_label"] == "导出失败"
    assert item["download_url"] is None and "重试" in item["note"]
    assert client.get(f"/console/exports/{export_id}/download").status_code == 404


def test_one_user_has_at_most_three_exports_waiting(ctx):
    b = f.brand()
    admin = f.staff(b, "brand_admin")
    for _ in range(exports.MAX_UNFINISHED):
        _ask(b, admin)
    with pytest.raises(exports.TooManyExports):
        _ask(b, admin)
    db.session.rollback()
    run_export_jobs()
    _ask(b, admin)  # once they are done, the next one is taken
