"""CSV import: validation with line numbers, idempotent re-runs, encodings, volume."""

from __future__ import annotations

import csv
import io
import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.db import db
from core.jobs import OutboxJob, enqueue, run_outbox_job
from members import activation, identities, imports
from members.jobs import import_members_job
from members.models import Member, MemberIdentity, MemberImport, MemberTag, TagHistory, card_no_for
from members.tiers_tags import tags
from tests import factories

HEADER = ["phone", "name", "gender", "birthday", "store_code", "pos_id", "tags"]


def write(tmp_path, rows, *, header=HEADER, encoding="utf-8", name="members.csv") -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    path = tmp_path / name
    path.write_bytes(buf.getvalue().encode(encoding))
    return str(path)


def counts() -> dict:
    return {
        m.__tablename__: db.session.execute(select(func.count()).select_from(m)).scalar_one()
        for m in (Member, MemberIdentity, MemberTag, TagHistory)
    }


def state() -> list[tuple]:
    return [
        (m.id, m.phone, m.name, m.gender, m.birthday, m.store_id, m.updated_at)
        for m in db.session.execute(select(Member).order_by(Member.id)).scalars()
    ]


@pytest.fixture
def library(world):
    t1 = tags.create_tag(kind="brand", name="老客", code="old-customer")
    t2 = tags.create_tag(kind="product", name="护肤偏好", code="skincare")
    db.session.commit()
    return t1, t2


def test_bad_rows_are_reported_with_line_and_reason(world, library, tmp_path):
    rows = [
        ["13800000001", "张三", "男", "1990-05-01", "SH001", "POS1", "old-customer|护肤偏好"],  # 2
        ["12345", "bad phone", "", "", "", "", ""],  # 3
        ["13800000002", "李四", "女", "1990-02-30", "", "", ""],  # 4
        ["13800000003", "王五", "", "", "XX999", "", ""],  # 5
        ["13800000004", "赵六", "", "", "", "", "vip"],  # 6
        ["138 0000 0001", "again", "", "", "", "", ""],  # 7 duplicate of line 2
        ["13800000005", "钱七", "", "", "", "POS1", ""],  # 8 duplicate POS id
        ["", "nobody", "", "", "", "", ""],  # 9
        ["13800000006", "孙八", "x", "", "", "", ""],  # 10
        ["13800000007", "周九", "F", "2099-01-01", "", "", ""],  # 11 birthday in the future
        ["+86 13800000008", "吴十", "2", "19851231", "hz001", "", ""],  # 12 ok
        ["", "POS only", "", "1985/1/2", "", "POS2", ""],  # 13 ok
    ]
    imp = imports.import_file(path=write(tmp_path, rows), batch_size=5)
    assert imp.status == "done"
    assert (imp.processed, imp.inserted, imp.updated, imp.unchanged, imp.bad) == (12, 3, 0, 0, 9)
    assert [(e["line"], e["reason"]) for e in imp.errors] == [
        (3, "invalid phone number '12345'"),
        (4, "invalid birthday '1990-02-30'"),
        (5, "unknown store code 'XX999'"),
        (6, "unknown tag 'vip'"),
        (7, "phone repeats line 2"),
        (8, "POS id repeats line 2"),
        (9, "neither phone nor POS id"),
        (10, "unknown gender 'x'"),
        (11, "invalid birthday '2099-01-01'"),
    ]
    zhang = Member.by_phone("13800000001")
    assert (zhang.name, zhang.gender, str(zhang.birthday), zhang.store_id, zhang.source) == (
        "张三", "m", "1990-05-01", world.store.id, "import",
    )  # fmt: skip
    assert zhang.card_no == card_no_for(zhang.id)
    assert {t.code for t in tags.member_tags(member_id=zhang.id)} == {"old-customer", "skincare"}
    assert identities.find_by_identity(kind="pos", value="POS1").id == zhang.id
    wu = Member.by_phone("13800000008")
    assert (wu.gender, str(wu.birthday), wu.store_id) == ("f", "1985-12-31", world.store2.id)
    pos_only = identities.find_by_identity(kind="pos", value="POS2")
    assert pos_only.phone is None and pos_only.name == "POS only"
    hist = db.session.execute(select(TagHistory)).scalars().all()
    assert {(h.member_id, h.source, h.reason) for h in hist} == {
        (zhang.id, "import", f"import #{imp.id}")
    }


def test_rerun_changes_nothing(world, library, tmp_path):
    rows = [
        [f"139{i:08d}", f"会员{i}", "男" if i % 2 else "女", "1990-01-01", "SH001", f"P{i}",
         "old-customer" if i % 3 else ""]
        for i in range(50)
    ]  # fmt: skip
    path = write(tmp_path, rows)
    first = imports.import_file(path=path, batch_size=7)
    assert (first.inserted, first.updated, first.unchanged, first.bad) == (50, 0, 0, 0)
    before, rows_before = counts(), state()
    second = imports.import_file(path=path, batch_size=7)
    assert (second.inserted, second.updated, second.unchanged, second.bad) == (0, 0, 50, 0)
    db.session.expire_all()
    assert counts() == before
    assert state() == rows_before


def test_existing_members_are_matched_and_updated(world, library, tmp_path):
    m, _ = activation.activate_member(
        phone="13800000011", guide_id=world.guide.id, source="oa", consent_version="v1"
    )
    pos_member, _ = identities.ensure_identity_member(kind="pos", value="POS-77", source="pos")
    other, _ = activation.activate_member(phone="13800000013", source="oa", consent_version="v1")
    identities.attach_identity(member_id=other.id, kind="pos", value="POS-88")
    db.session.commit()
    rows = [
        ["13800000011", "新名字", "", "", "HZ001", "", "skincare"],  # existing by phone
        ["13800000012", "有卡", "", "", "", "POS-77", ""],  # phone-less POS member gets phone
        ["13800000014", "冲突", "", "", "", "POS-88", ""],  # POS id of another phone
    ]
    imp = imports.import_file(path=write(tmp_path, rows))
    assert (imp.inserted, imp.updated, imp.unchanged, imp.bad) == (0, 2, 0, 1)
    assert imp.errors == [
        {"line": 4, "reason": "POS id 'POS-88' belongs to a member with another phone"}
    ]
    db.session.expire_all()
    m = db.session.get(Member, m.id)
    assert (m.name, m.store_id) == ("新名字", world.store.id)  # first-touch store kept
    assert db.session.get(Member, pos_member.id).phone == "13800000012"
    again = imports.import_file(path=write(tmp_path, rows))
    assert (again.inserted, again.updated, again.unchanged, again.bad) == (0, 0, 2, 1)


def test_gbk_export_with_chinese_header(world, library, tmp_path):
    header = ["手机号", "姓名", "性别", "生日", "门店编码", "POS会员号", "标签"]
    rows = [["13800000021", "欧阳娜娜", "女", "1995-06-01", "SH001", "G1", "老客"]]
    path = write(tmp_path, rows, header=header, encoding="gbk")
    assert imports.sniff(path) == ("gb18030", 2)
    imp = imports.import_file(path=path)
    assert (imp.status, imp.encoding, imp.inserted) == ("done", "gb18030", 1)
    m = Member.by_phone("13800000021")
    assert m.name == "欧阳娜娜" and m.gender == "f"
    assert [t.code for t in tags.member_tags(member_id=m.id)] == ["old-customer"]


def test_utf8_bom(world, library, tmp_path):
    path = write(tmp_path, [["13800000031", "李雷", "m", "", "", "", ""]], encoding="utf-8-sig")
    imp = imports.import_file(path=path)
    assert (imp.status, imp.encoding, imp.inserted, imp.bad) == ("done", "utf-8-sig", 1, 0)
    assert Member.by_phone("13800000031").name == "李雷"


def test_broken_encoding_and_bad_header_fail_cleanly(world, library, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"phone,name\n13800000041," + b"\x81\x20\xff\xfe\n")
    imp = imports.import_file(path=str(broken))
    assert imp.status == "failed" and "neither UTF-8 nor GBK" in imp.message
    nohead = write(tmp_path, [["x"]], header=["foo", "bar"], name="nohead.csv")
    imp = imports.import_file(path=nohead)
    assert imp.status == "failed" and "phone or a pos_id column" in imp.message
    assert counts()["member"] == 0


def test_twenty_thousand_rows_in_batches_with_progress(world, library, tmp_path):
    rng = random.Random(4)
    n = 20_000
    rows = []
    for i in range(n):
        rows.append(
            [
                f"13{rng.randint(5, 9)}{i:08d}",
                f"会员{i}",
                rng.choice(["男", "女", ""]),
                f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                rng.choice(["SH001", "HZ001", ""]),
                f"POS{i:07d}",
                rng.choice(["", "old-customer", "old-customer|skincare"]),
            ]
        )
    rows[500][0] = "1234"  # one bad row
    seen = []
    imp = imports.import_file(
        path=write(tmp_path, rows), batch_size=4000, on_progress=lambda p: seen.append(p.processed)
    )
    assert (imp.status, imp.total_rows, imp.processed) == ("done", n, n)
    assert (imp.inserted, imp.bad) == (n - 1, 1)
    assert seen == sorted(seen) and len(seen) >= 6 and seen[-1] == n
    c = counts()
    assert c["member"] == n - 1 and c["member_identity"] == n - 1
    for m in db.session.execute(select(Member).limit(50)).scalars():
        assert m.card_no == card_no_for(m.id)
    row = db.session.get(MemberImport, imp.id)
    assert row.percent == 100


def test_cli_import_shows_progress_and_summary(app, world, library, tmp_path):
    path = write(
        tmp_path, [["13800000051", "韩梅梅", "f", "", "", "", ""], ["bad", "", "", "", "", "", ""]]
    )
    result = app.test_cli_runner().invoke(
        args=["members", "import", path, "--brand", world.brand.slug]
    )
    assert result.exit_code == 0, result.output
    assert "2 rows, 1 inserted, 0 updated, 0 unchanged, 1 bad" in result.output
    assert "line 3: invalid phone number 'bad'" in result.output


def test_import_job_for_the_console(world, library, tmp_path):
    path = write(tmp_path, [["13800000061", "控制台", "", "", "", "", ""]])
    imp = imports.create_import(filename="members.csv", path=path)
    outbox_id = enqueue(import_members_job, imp.id)
    db.session.commit()
    assert run_outbox_job(outbox_id) == "done"
    db.session.expire_all()
    row = db.session.get(MemberImport, imp.id)
    assert (row.status, row.inserted) == ("done", 1)
    assert db.session.get(OutboxJob, outbox_id).status == "done"


def test_member_rows_belong_to_a_member_of_their_brand(world, library, tmp_path):
    # The import relies on the composite keys (brand_id, member_id) -> member(brand_id, id):
    # an identity or a tag can only hang off a member of its own brand.
    imp = imports.import_file(path=write(tmp_path, [["13800000071", "甲", "", "", "", "P71", ""]]))
    assert imp.inserted == 1
    member_id = Member.by_phone("13800000071").id
    other = factories.brand()
    for row in (
        MemberIdentity(brand_id=other.id, member_id=member_id, kind="pos", value="X1"),
        MemberTag(brand_id=other.id, member_id=member_id, tag_id=library[0].id),
        MemberIdentity(brand_id=world.brand.id, member_id=member_id + 1000, kind="pos", value="X2"),
    ):
        with pytest.raises(IntegrityError):
            with db.session.begin_nested():
                db.session.add(row)
                db.session.flush()
    assert counts() == {"member": 1, "member_identity": 1, "member_tag": 0, "tag_history": 0}


def test_new_members_are_inserted_with_every_column(world, library, tmp_path):
    # Every column of every table written for new members, member ids in line order across
    # batches (batches merge in parallel: the rows of identities and tags are compared by
    # member, in the order of the file within a member), names with characters COPY must
    # escape kept as they are.
    t1, t2 = library
    rows = [
        ["13800000081", "张\t三\\", "男", "1990-05-01", "SH001", "POS81", "skincare|old-customer"],
        ["", "无手机", "", "", "", "POS82", ""],
        ["13800000083", 'O"Neil, 李', "女", "", "HZ001", "", "old-customer"],
        ["13800000084", "", "", "2001-12-31", "", "", ""],
        ["13800000085", "五", "", "", "", "POS85", "skincare"],
    ]
    imp = imports.import_file(path=write(tmp_path, rows), batch_size=2)
    assert (imp.inserted, imp.bad) == (5, 0)
    stores = {"SH001": world.store.id, "HZ001": world.store2.id, "": None}
    genders = {"男": "m", "女": "f", "": ""}
    b = world.brand.id
    members = db.session.execute(select(Member).order_by(Member.id)).scalars().all()
    ids = [m.id for m in members]
    assert ids == sorted(ids) and len(ids) == 5
    assert [
        (m.brand_id, m.phone, m.card_no, m.name, m.gender, str(m.birthday or ""), m.store_id)
        for m in members
    ] == [
        (b, r[0] or None, card_no_for(i), r[1], genders[r[2]], r[3], stores[r[4]])
        for i, r in zip(ids, rows, strict=True)
    ]
    assert {(m.source, m.status, m.guide_id, m.tier_id) for m in members} == {
        ("import", "active", None, None)
    }
    assert all(m.created_at == m.updated_at for m in members)
    got = db.session.execute(
        select(MemberIdentity.brand_id, MemberIdentity.member_id, MemberIdentity.kind,
               MemberIdentity.value).order_by(MemberIdentity.id)
    ).all()  # fmt: skip
    assert got == [(b, ids[0], "pos", "POS81"), (b, ids[1], "pos", "POS82"),
                   (b, ids[4], "pos", "POS85")]  # fmt: skip
    expected = [(ids[0], t2.id), (ids[0], t1.id), (ids[2], t1.id), (ids[4], t2.id)]
    got = db.session.execute(
        select(MemberTag.brand_id, MemberTag.member_id, MemberTag.tag_id, MemberTag.source,
               MemberTag.staff_id).order_by(MemberTag.member_id, MemberTag.id)
    ).all()  # fmt: skip
    assert got == [(b, m, t, "import", None) for m, t in expected]
    got = db.session.execute(
        select(TagHistory.brand_id, TagHistory.member_id, TagHistory.tag_id, TagHistory.action,
               TagHistory.source, TagHistory.reason, TagHistory.staff_id)
        .order_by(TagHistory.member_id, TagHistory.id)
    ).all()  # fmt: skip
    assert got == [(b, m, t, "added", "import", f"import #{imp.id}", None) for m, t in expected]


def test_new_rows_still_pass_the_foreign_keys(world, library, tmp_path):
    # The merge keeps every constraint: a staged store or tag that no longer exists fails
    # the batch, and nothing of it stays.
    from members.imports import sql

    for line in (b"2\t13800000091\t\t\t\\N\t987654321\t\\N\t\\N\n",
                 b"2\t13800000092\t\t\t\\N\t\\N\tP92\t{987654321}\n"):  # fmt: skip
        with db.engine.connect() as conn:
            prepared = sql.prepare(conn)
            with pytest.raises(IntegrityError, match="foreign key"):
                sql.apply_batch(conn, world.brand.id, 1, line, 1, prepared)
            conn.rollback()
    assert counts() == {"member": 0, "member_identity": 0, "member_tag": 0, "tag_history": 0}


def test_later_lines_win_over_earlier_batches_for_an_existing_member(world, library, tmp_path):
    # Batches merge in parallel, but a batch that touches existing members waits for every
    # earlier batch: the member gets the last line's name, as one batch after the other.
    m, _ = activation.activate_member(phone="13800000111", source="oa", consent_version="v1")
    identities.attach_identity(member_id=m.id, kind="pos", value="POS-111")
    db.session.commit()
    rows = [["13800000111", "第一", "", "", "", "", ""]]
    rows += [[f"1390000{i:04d}", f"新{i}", "", "", "", "", ""] for i in range(12)]
    rows += [["", "第二", "", "", "", "POS-111", "skincare"]]
    imp = imports.import_file(path=write(tmp_path, rows), batch_size=2)
    assert (imp.status, imp.inserted, imp.updated, imp.bad) == ("done", 12, 2, 0)
    db.session.expire_all()
    m = db.session.get(Member, m.id)
    assert m.name == "第二"
    assert "skincare" in [t.code for t in tags.member_tags(member_id=m.id)]


def test_a_phone_set_by_an_earlier_batch_makes_a_later_pos_id_conflict(world, library, tmp_path):
    # A phone-less member with two POS ids: the first line gives it a phone, so a later line
    # (another batch, merged in parallel) with its other POS id and another phone is bad.
    pos_member, _ = identities.ensure_identity_member(kind="pos", value="POS-A", source="pos")
    identities.attach_identity(member_id=pos_member.id, kind="pos", value="POS-B")
    db.session.commit()
    rows = [["13800000121", "甲", "", "", "", "POS-A", ""]]
    rows += [[f"1390001{i:04d}", "", "", "", "", "", ""] for i in range(9)]
    rows += [["13800000122", "乙", "", "", "", "POS-B", ""]]
    for _ in range(2):  # the second time, as a re-run
        imp = imports.import_file(path=write(tmp_path, rows), batch_size=1)
        assert imp.status == "done" and imp.bad == 1
        assert imp.errors == [
            {"line": 12, "reason": "POS id 'POS-B' belongs to a member with another phone"}
        ]
        db.session.expire_all()
        assert db.session.get(Member, pos_member.id).phone == "13800000121"
        assert Member.by_phone("13800000122") is None


def test_a_failed_batch_stops_the_import_and_a_rerun_completes_it(
    world, library, tmp_path, monkeypatch
):
    from members.imports import sql

    rows = [[f"1390002{i:04d}", f"会员{i}", "", "", "", f"F{i}", "old-customer"] for i in range(40)]
    path = write(tmp_path, rows)
    real = sql.apply_batch
    calls = []

    def failing(conn, brand_id, import_id, data, n, prepared, order=None):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("the database went away")
        return real(conn, brand_id, import_id, data, n, prepared, order)

    monkeypatch.setattr(sql, "apply_batch", failing)
    with pytest.raises(RuntimeError):
        imports.import_file(path=path, batch_size=4)
    imp = db.session.execute(select(MemberImport)).scalar_one()
    assert imp.status == "failed" and "the database went away" in imp.message
    c = counts()
    # Only whole batches stay, each with its identities, tags and history.
    assert c["member"] % 4 == 0 and c["member"] < 40
    assert c == {"member": c["member"], "member_identity": c["member"],
                 "member_tag": c["member"], "tag_history": c["member"]}  # fmt: skip
    monkeypatch.setattr(sql, "apply_batch", real)
    again = imports.import_file(path=path, batch_size=4)
    assert (again.status, again.inserted + again.unchanged, again.bad) == ("done", 40, 0)
    assert counts() == {"member": 40, "member_identity": 40, "member_tag": 40, "tag_history": 40}
    ids = db.session.execute(select(Member.id).order_by(Member.phone)).scalars().all()
    assert len(set(ids)) == 40


def test_the_report_keeps_the_first_bad_lines(world, library, tmp_path, monkeypatch):
    # Batches finish out of order; the report still lists the first bad lines of the file.
    from members.imports import run

    monkeypatch.setattr(run, "MAX_ERRORS", 5)
    rows = [[f"1390003{i:04d}" if i % 2 else "bad", "", "", "", "", "", ""] for i in range(40)]
    imp = imports.import_file(path=write(tmp_path, rows), batch_size=2)
    assert (imp.inserted, imp.bad) == (20, 20)
    assert [e["line"] for e in imp.errors] == [2, 4, 6, 8, 10]


def test_an_import_leaves_nothing_pending_in_the_trigram_indexes(world, library, tmp_path):
    # The batches grow the GIN pending lists past the default and merge them before they
    # commit: a console search never scans a long pending list after an import.
    from sqlalchemy import text

    rows = [[f"1390004{i:04d}", f"王小{i}", "", "", "", "", ""] for i in range(300)]
    imp = imports.import_file(path=write(tmp_path, rows), batch_size=100)
    assert imp.inserted == 300
    pending = db.session.execute(
        text(
            "SELECT gin_clean_pending_list('ix_member_name_trgm'::regclass)"
            " + gin_clean_pending_list('ix_member_phone_trgm'::regclass)"
        )
    ).scalar_one()
    assert pending == 0
