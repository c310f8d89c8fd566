"""The bindings import: good rows bind (inside protection too, as the operator decided), bad
rows give per-row errors and write nothing, the error file never runs formulas, a GBK file
reads, a big file is a job with progress."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.jobs import OutboxJob, run_outbox_job
from guide_distribution.models import BindingEvent, CustomerBinding
from members.activation import record_scan
from tests import factories
from tests.shop.conftest import member

HEADER = "会员手机号,会员卡号,导购手机号,门店编码,原因\r\n"


def _upload(client, body: str, *, encoding="utf-8"):
    token = factories.csrf(client, "/console/distribution/binding/import")
    import io

    return client.post(
        "/console/distribution/binding/import",
        data={"csrf_token": token, "file": (io.BytesIO(body.encode(encoding)), "b.csv")},
        content_type="multipart/form-data",
    )


def _setup(client, shop):
    admin = factories.staff(shop.brand, role="brand_admin")
    factories.login(client, shop.brand, admin)
    a = factories.staff(shop.brand, role="guide", store=shop.store)
    b = factories.staff(shop.brand, role="guide", store=shop.store)
    shop.admin = admin
    return a, b


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_good_file_binds_every_row_whatever_the_rules(client, shop):
    a, b = _setup(client, shop)
    m1, m2, m3 = member(), member(), member()
    record_scan(member_id=m3.id, guide_id=a.id, store_id=a.store_id)  # protected by A
    db.session.commit()
    other_store = factories.store(shop.brand)
    body = HEADER + (
        f"{m1.phone},,{a.phone},,迁移\r\n"
        f",{m2.card_no},,{other_store.code},\r\n"
        f"+86 {m3.phone[:3]} {m3.phone[3:7]} {m3.phone[7:]},,{b.phone},,门店调整\r\n"
    )
    r = _upload(client, body, encoding="gb18030")
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已导入 3 行：绑定 3 位顾客" in page
    rows = {x.member_id: x for x in db.session.execute(select(CustomerBinding)).scalars()}
    assert (rows[m1.id].guide_id, rows[m1.id].store_id) == (a.id, a.store_id)
    assert (rows[m2.id].guide_id, rows[m2.id].store_id) == (None, other_store.id)
    assert rows[m3.id].guide_id == b.id and rows[m3.id].source == "import"
    reasons = db.session.execute(
        select(BindingEvent.reason).where(BindingEvent.source == "import")
    ).scalars()
    assert sorted(reasons) == sorted(["迁移", "CSV 导入", "门店调整"])


def test_bad_rows_are_listed_and_nothing_is_written(client, shop):
    a, _b = _setup(client, shop)
    m1, m2 = member(), member()
    guide_as_member = member()
    guide_as_member.phone = a.phone
    db.session.commit()
    other = factories.brand()
    stranger = factories.staff(other, role="guide", store=factories.store(other))
    body = HEADER + (
        f"{m1.phone},,{a.phone},,ok\r\n"  # row 2 is fine
        "12345,,,SH-NONE,\r\n"  # row 3: bad phone, unknown store
        f"13000000000,,{stranger.phone},,\r\n"  # row 4: nobody, another brand's guide
        f"{m1.phone},,{a.phone},,\r\n"  # row 5: the same member again
        f"{a.phone},,{a.phone},,\r\n"  # row 6: a guide bound to a guide
        f"{m2.phone},,,,\r\n"  # row 7: neither guide nor store
        f'=HYPERLINK("http://x"),,{a.phone},,\r\n'  # row 8: a formula as a phone
    )
    r = _upload(client, body)
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "未导入任何数据" in page
    for text in (
        "不是手机号码",
        "没有门店使用此编码",
        "没有会员使用此手机号",
        "没有在职导购使用此手机号",
        "同一会员已在第 2 行",
        "导购不能被绑定为其他导购的顾客",
        "请填写导购或门店",
    ):
        assert text in page, text
    assert _count(CustomerBinding) == 0 and _count(BindingEvent) == 0
    errors_url = r.headers["Location"] + "/errors.csv"
    csv_text = client.get(errors_url).get_data(as_text=True)
    assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text
    rows = {line.split(",")[0] for line in csv_text.splitlines()[1:]}
    assert rows == {"3", "4", "5", "6", "7", "8"}


def test_a_file_without_the_columns_is_refused_on_the_form(client, shop):
    _setup(client, shop)
    r = _upload(client, "姓名,电话\r\n张三,13800000000\r\n")
    assert r.status_code == 400 and "表头缺少以下列" in r.get_data(as_text=True)


def test_a_big_file_is_a_job_with_progress(app, client, shop):
    a, _b = _setup(client, shop)
    admin = shop.admin
    ms = [member() for _ in range(4)]
    body = HEADER + "".join(f"{m.phone},,{a.phone},,\r\n" for m in ms)
    app.config["GUIDE_IMPORT_INLINE_ROWS"] = 2
    try:
        r = _upload(client, body)
    finally:
        app.config.pop("GUIDE_IMPORT_INLINE_ROWS")
    assert r.status_code == 303
    assert 'data-import-status="queued"' in client.get(r.headers["Location"]).get_data(as_text=True)
    job = db.session.execute(select(OutboxJob)).scalars().all()[-1]
    assert run_outbox_job(job.id) == "done"
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "绑定 4 位顾客" in page
    assert _count(CustomerBinding) == 4
    actors = db.session.execute(select(BindingEvent.actor_kind, BindingEvent.actor_id)).all()
    assert {a for a in actors} == {("staff", admin.id)}
