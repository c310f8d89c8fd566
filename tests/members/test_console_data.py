"""Console export (a job, then a download; audited, masked for guides) and CSV import with its
progress view."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from core import jobs
from core.db import db
from core.exports import ExportFile
from members.models import Member, MemberImport
from tests import factories as f
from tests.members.test_console import audit_rows
from tests.support.exports import run_export_jobs


def _csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _ask(client, **fields):
    token = f.csrf_token(client, "/console/members/export")
    return client.post("/console/members/export", data={"csrf_token": token, **fields})


def _mine(client) -> list[dict]:
    r = client.get("/console/exports/mine.json?kind=members")
    assert r.status_code == 200
    return r.json["exports"]


def test_admin_export_is_queued_then_downloaded_with_full_phones_and_audited(client, world):
    w = world
    f.member(phone="13900000001", activated=True, guide=w.guide, name="林晓")
    f.member(phone="13900000003", activated=True, guide=w.other_store_guide, name="李娜")
    f.login(client, w.brand, w.admin)
    r = _ask(client, store_id=str(w.store.id), full_phones="y")
    # The request only queues the job: no file yet, the page lists the export as waiting.
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/members/export")
    row = db.session.execute(select(ExportFile)).scalar_one()
    assert (row.status, row.path, row.requested_by) == ("queued", None, f"s:{w.admin.id}")
    assert db.session.execute(select(jobs.OutboxJob.status)).scalar_one() == "queued"  # to RQ
    (item,) = _mine(client)
    assert (item["status_label"], item["finished"], item["download_url"]) == ("排队中", False, None)
    page = client.get("/console/members/export").get_data(as_text=True)
    assert "我最近的导出" in page and "排队中" in page
    (entry,) = audit_rows("export")
    assert entry.actor_id == w.admin.id and entry.after["full_phones"] is True
    assert entry.after["segment"]["store_ids"] == [w.store.id]

    assert run_export_jobs() == ["done"]
    (item,) = _mine(client)
    assert item["status_label"] == "可下载" and item["percent"] == 100 and item["finished"]
    assert item["rows_done"] == "1" and "前下载" in item["note"]
    r = client.get(item["download_url"])
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "members-" in r.headers["Content-Disposition"]
    rows = _csv(r.get_data())
    assert rows[0][:3] == ["卡号", "手机号", "姓名"]  # the header in the operator's language
    assert [(row[1], row[2]) for row in rows[1:]] == [("13900000001", "林晓")]
    (download,) = audit_rows("download")
    assert download.actor_id == w.admin.id and download.object_id == str(item["id"])
    assert download.after["rows"] == 1


def test_guide_export_is_masked_own_customers_and_audited(client, world):
    w = world
    f.member(phone="13900000001", activated=True, guide=w.guide)
    f.member(phone="13900000002", activated=True, guide=w.guide2)
    f.login(client, w.brand, w.guide)
    # A guide never gets full numbers: the box is not offered, and asking anyway is ignored.
    assert _ask(client, full_phones="y").status_code == 302
    run_export_jobs()
    (item,) = _mine(client)
    rows = _csv(client.get(item["download_url"]).get_data())
    assert [row[1] for row in rows[1:]] == ["139****0001"]
    (entry,) = audit_rows("export")
    assert entry.actor_id == w.guide.id and entry.after["full_phones"] is False


def test_only_the_staff_who_asked_or_a_brand_admin_downloads(client, world):
    w = world
    f.member(phone="13900000001", activated=True, guide=w.guide)
    f.login(client, w.brand, w.manager)
    _ask(client)
    run_export_jobs()
    (item,) = _mine(client)
    url = item["download_url"]
    assert client.get(url).status_code == 200
    for other in (w.guide, w.guide2):  # same brand, not theirs, no right to see it
        other_client = client.application.test_client()
        f.login(other_client, w.brand, other)
        assert other_client.get(url).status_code == 404
        assert _mine(other_client) == []
    admin = client.application.test_client()
    f.login(admin, w.brand, w.admin)
    assert admin.get(url).status_code == 200
    assert len(audit_rows("download")) == 2


def test_export_bad_filter_writes_nothing(client, world):
    f.login(client, world.brand, world.admin)
    r = _ask(client, store_id="99999")
    assert r.status_code == 400
    assert audit_rows("export") == []
    assert db.session.execute(select(ExportFile)).first() is None
    assert db.session.execute(select(jobs.OutboxJob)).first() is None


def test_the_form_counts_its_reach_up_to_a_cap(client, world, monkeypatch):
    from core import paging

    for i in range(3):
        f.member(phone=f"1390000000{i}", activated=True, guide=world.guide)
    monkeypatch.setattr(paging, "CAP", 2)
    monkeypatch.setattr(paging.capped_count, "__kwdefaults__", {"cap": 2})
    f.login(client, world.brand, world.admin)
    assert "2+ 名会员" in client.get("/console/members/export").get_data(as_text=True)


def test_import_upload_runs_as_job_with_progress_and_bad_rows(client, world):
    w = world
    f.login(client, w.brand, w.admin)
    content = (
        "手机号,姓名,性别,门店编码\n"
        "13900000011,张伟,男,SH001\n"
        "12345,坏号码,男,SH001\n"
        "13900000012,王芳,女,NOPE\n"
        "13900000013,刘洋,,\n"
    ).encode("gbk")
    token = f.csrf_token(client, "/console/members/imports")
    r = client.post(
        "/console/members/imports",
        data={"csrf_token": token, "file": (io.BytesIO(content), "pos.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    imp = db.session.execute(select(MemberImport)).scalar_one()
    assert r.headers["Location"].endswith(f"/console/members/imports/{imp.id}")
    progress = client.get(f"/console/members/imports/{imp.id}/progress.json").json
    assert progress["status"] == "pending" and progress["finished"] is False

    job = db.session.execute(
        select(jobs.OutboxJob).where(jobs.OutboxJob.func.contains("import_members_job"))
    ).scalar_one()
    assert jobs.run_outbox_job(job.id) == "done"

    progress = client.get(f"/console/members/imports/{imp.id}/progress.json").json
    assert progress["finished"] is True and progress["percent"] == 100
    assert (progress["inserted"], progress["bad"], progress["processed"]) == (2, 2, 4)
    html = client.get(f"/console/members/imports/{imp.id}").get_data(as_text=True)
    assert "invalid phone number" in html and "unknown store code" in html
    db.session.expire_all()
    phones = set(db.session.execute(select(Member.phone)).scalars())
    assert phones == {"13900000011", "13900000013"}
    assert "pos.csv" in client.get("/console/members/imports").get_data(as_text=True)


def test_import_bad_uploads_write_nothing(client, world):
    f.login(client, world.brand, world.admin)
    token = f.csrf_token(client, "/console/members/imports")
    for data in (
        {"csrf_token": token},
        {"csrf_token": token, "file": (io.BytesIO(b""), "empty.csv")},
        {"csrf_token": token, "file": (io.BytesIO(b"phone\n13900000001\n"), "members.xlsx")},
    ):
        r = client.post("/console/members/imports", data=data, content_type="multipart/form-data")
        assert r.status_code == 400
    assert db.session.execute(select(MemberImport)).first() is None
    assert db.session.execute(select(jobs.OutboxJob)).first() is None


def test_import_pages_are_for_admins(client, world):
    f.login(client, world.brand, world.manager)
    assert client.get("/console/members/imports").status_code == 403
