"""Running an import of existing members from a POS/CRM CSV export (PostgreSQL).

The file is streamed and validated in Python (``members.imports.rows``); each batch of valid
rows is merged by set-based statements (``members.imports.sql``). Parsing overlaps the
merges, and two batches merge at the same time, each on a connection of its own (PostgreSQL
works in one process per connection): a batch of new members waits only for the batch
before it to draw its ids, a batch touching existing members for every earlier batch to
commit (see ``sql.apply_batch``). Each batch commits on its connection (without waiting for
the WAL flush: a lost batch is redone by a re-run), and the ``member_import`` row is updated
with it, so a page can show progress while the import runs. Re-running a file changes
nothing: every row counts as unchanged."""

from __future__ import annotations

import csv
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from core.db import db, utcnow
from core.errors import ValidationError
from core.tenancy import require_brand_id, use_brand
from members.imports import sql
from members.imports.rows import (
    ImportError_,
    Repeated,
    RowValidator,
    batches,
    columns,
    name_first_lines,
    sniff,
)
from members.models import MemberImport, TagDefinition
from org.services import list_stores

BATCH = 100_000
MAX_ERRORS = 1000
# Batches merged at the same time, each on its own connection (see ``_pipelined``).
MERGE_CONNECTIONS = 2

ProgressFn = Callable[[MemberImport], None]


def upload_dir(instance_path: str) -> str:
    """The folder of uploaded import files (created when missing)."""
    path = os.path.join(instance_path, "imports")
    os.makedirs(path, exist_ok=True)
    return path


def receive_upload(*, upload, folder: str, created_by: int | None = None) -> MemberImport:
    """Keep an uploaded CSV file in ``folder`` and record its import (the caller commits, then
    enqueues the run). A file that is not a .csv/.txt or is empty is refused."""
    name = os.path.basename(upload.filename or "members.csv")
    if not name.lower().endswith((".csv", ".txt")):
        raise ValidationError(_l("Upload a .csv file."), field="file")
    path = os.path.join(folder, f"{require_brand_id()}-{uuid.uuid4().hex}.csv")
    upload.save(path)
    if os.path.getsize(path) == 0:
        os.remove(path)
        raise ValidationError(_l("The file is empty."), field="file")
    return create_import(filename=name, path=path, created_by=created_by)


def create_import(*, filename: str, path: str, created_by: int | None = None) -> MemberImport:
    """Record an import of an uploaded file (the caller commits, then runs or enqueues it)."""
    row = MemberImport(
        filename=os.path.basename(filename)[:255],
        path=path,
        status="pending",
        created_by=created_by,
    )
    db.session.add(row)
    db.session.flush()
    return row


def _reference_data(brand_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """The brand's stores by upper-case code, and its active tags by code and by name."""
    with use_brand(brand_id):
        stores = {store.code.upper(): store.id for store in list_stores()}
    tags: dict[str, int] = {}
    for tid, code, name in db.session.execute(
        select(TagDefinition.id, TagDefinition.code, TagDefinition.name)
        .where(TagDefinition.brand_id == brand_id, TagDefinition.active.is_(True))
        .execution_options(all_brands=True)
    ):
        tags.setdefault(name.lower(), tid)
        tags[code.lower()] = tid
    return stores, tags


def run_import(
    *, import_id: int, batch_size: int = BATCH, on_progress: ProgressFn | None = None
) -> MemberImport:
    """Run a recorded import to the end, committing after each batch on its own connection.

    The ``member_import`` row must be committed before (its progress is written by another
    connection). Returns the row, reloaded, with status ``done`` or ``failed``.
    """
    imp = db.session.execute(
        select(MemberImport).where(MemberImport.id == import_id).execution_options(all_brands=True)
    ).scalar_one()
    if imp.status == "done":
        return imp
    brand_id, path = imp.brand_id, imp.path
    stores, tags = _reference_data(brand_id)
    db.session.rollback()  # nothing of ours stays open while the import runs
    state = {"processed": 0, "inserted": 0, "updated": 0, "unchanged": 0, "bad": 0}
    errors: list[dict] = []

    with ExitStack() as stack:
        conn = stack.enter_context(db.engine.connect())
        # Batches merge on MERGE_CONNECTIONS connections of their own, opened here (the
        # engine needs the app context, which the merging threads do not have).
        merge_conns = [stack.enter_context(db.engine.connect()) for _ in range(MERGE_CONNECTIONS)]
        saving = threading.Lock()

        def save(status: str, **extra) -> None:
            conn.execute(
                update(MemberImport.__table__)
                .where(MemberImport.__table__.c.id == import_id)
                .values(status=status, errors=list(errors), **state, **extra)
            )
            conn.commit()
            if on_progress is not None:
                on_progress(_snapshot(imp, status, state, extra))

        try:
            encoding, lines = sniff(path)
            prepared = [sql.prepare(c) for c in merge_conns]
            for c in merge_conns:
                c.commit()
            save("running", encoding=encoding, total_rows=max(0, lines - 1), started_at=utcnow())
            repeats: list[tuple[dict, Repeated]] = []
            today = utcnow().date()
            with open(path, encoding=encoding, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is None:
                    raise ImportError_("the file is empty", field="file")
                cols = columns(header)
                validator = RowValidator(stores, tags, today, cols)

                def merge_batch(worker: int, batch: tuple, order: _BatchOrder) -> None:
                    data, good, bad, read = batch
                    mconn = merge_conns[worker]
                    try:
                        inserted, updated, db_bad = sql.apply_batch(
                            mconn, brand_id, import_id, data, good, prepared[worker], order
                        )
                    except _Stopped:
                        mconn.rollback()
                        raise
                    bad = sorted(bad + db_bad, key=lambda b: b["line"])
                    with saving:
                        state["processed"] += read
                        state["inserted"] += inserted
                        state["updated"] += updated
                        state["bad"] += len(bad)
                        state["unchanged"] += good - len(db_bad) - inserted - updated
                        _keep_first_errors(errors, repeats, bad)
                        # The batch commits with the progress it adds.
                        mconn.execute(
                            update(MemberImport.__table__)
                            .where(MemberImport.__table__.c.id == import_id)
                            .values(status="running", errors=list(errors), **state)
                        )
                        mconn.commit()
                        order.committed()
                        if on_progress is not None:
                            on_progress(_snapshot(imp, "running", state, {}))

                def give_up() -> None:
                    for c in merge_conns:
                        c.rollback()

                _pipelined(batches(reader, validator, batch_size), merge_batch, give_up)
                del validator
            if repeats:
                name_first_lines(path, encoding, stores, tags, today, cols, repeats)
            save("done", finished_at=utcnow())
        except (ValidationError, UnicodeDecodeError, csv.Error, OSError) as exc:
            conn.rollback()
            message = exc.message if isinstance(exc, ValidationError) else str(exc)
            save("failed", message=message[:2000], finished_at=utcnow())
        except Exception as exc:
            # Unexpected (the database went away...): visible as failed, then raised so a
            # job retries. Batches already committed stay; a re-run skips them as unchanged.
            conn.rollback()
            save("failed", message=f"{type(exc).__name__}: {exc}"[:2000], finished_at=utcnow())
            raise
    db.session.expire_all()
    return db.session.execute(
        select(MemberImport).where(MemberImport.id == import_id).execution_options(all_brands=True)
    ).scalar_one()


def _keep_first_errors(errors: list[dict], repeats: list, bad: list[dict]) -> None:
    """Add a batch's bad rows to the report, which keeps the MAX_ERRORS first by line
    (batches finish out of order), and remember the repeated values still reported."""
    for entry in bad[:MAX_ERRORS]:
        if "repeats" in entry:
            repeats.append((entry, entry.pop("repeats")))
        errors.append(entry)
    errors.sort(key=lambda e: e["line"])
    if len(errors) > MAX_ERRORS:
        del errors[MAX_ERRORS:]
        kept = {id(e) for e in errors}
        repeats[:] = [r for r in repeats if id(r[0]) in kept]


class _Order:
    """How far the batches of an import have got: the batches before which all have drawn
    their ids, and all have committed (batches finish out of order)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._drawn: set[int] = set()
        self._committed: set[int] = set()
        self.all_drawn = 0  # every batch below has drawn its ids
        self.all_committed = 0  # every batch below has committed
        self.stopped = False

    def wait(self, until) -> None:
        with self._cond:
            self._cond.wait_for(lambda: until() or self.stopped)
            if not until():
                raise _Stopped

    def mark(self, k: int, *, committed: bool) -> None:
        with self._cond:
            self._drawn.add(k)
            while self.all_drawn in self._drawn:
                self.all_drawn += 1
            if committed:
                self._committed.add(k)
                while self.all_committed in self._committed:
                    self.all_committed += 1
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()


class _BatchOrder:
    """Batch ``k``'s view of the order (what ``sql.apply_batch`` waits on)."""

    def __init__(self, order: _Order, k: int):
        self.order, self.k = order, k

    def earlier_committed(self) -> bool:
        return self.order.all_committed >= self.k

    def wait_earlier_committed(self) -> None:
        self.order.wait(lambda: self.order.all_committed >= self.k)

    @contextmanager
    def drawing(self) -> Iterator[None]:
        self.order.wait(lambda: self.order.all_drawn >= self.k)
        try:
            yield
        finally:
            self.order.mark(self.k, committed=False)

    def committed(self) -> None:
        self.order.mark(self.k, committed=True)


class _Stopped(Exception):
    """Another batch failed: this one gives up while waiting for it."""


def _pipelined(items: Iterator, consume: Callable, give_up: Callable) -> None:
    """Parse batches in this thread while MERGE_CONNECTIONS threads merge the previous ones.

    PostgreSQL works in its own processes, so parsing and the merges overlap. Batches are
    taken in file order and wait for each other as ``sql.apply_batch`` describes; the queue
    holds at most one parsed batch, which keeps memory bounded (parsing is several times
    faster than merging). When a merge fails the others stop at their next wait, every open
    batch is rolled back and the failure is raised here.
    """
    q: queue.Queue = queue.Queue(maxsize=1)
    failures: list[BaseException] = []
    order = _Order()

    def work(worker: int) -> None:
        while (item := q.get()) is not None:
            k, batch = item
            if failures:
                continue  # drain so that the producer never blocks
            try:
                consume(worker, batch, _BatchOrder(order, k))
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failures.append(exc)
                order.stop()
            finally:
                order.mark(k, committed=False)  # a batch that drew nothing lets the next draw

    workers = [
        threading.Thread(target=work, args=(w,), name=f"member-import-merge-{w}", daemon=True)
        for w in range(MERGE_CONNECTIONS)
    ]
    for w in workers:
        w.start()
    try:
        for k, item in enumerate(items):
            if failures:
                break
            q.put((k, item))
    except BaseException:
        order.stop()
        raise
    finally:
        for _ in workers:
            q.put(None)
        for w in workers:
            w.join()
    if failures:
        give_up()
        raise failures[0]


def _snapshot(imp: MemberImport, status: str, state: dict, extra: dict) -> MemberImport:
    """A detached copy of the import row with the latest figures, for progress callbacks."""
    snap = MemberImport(
        id=imp.id, filename=imp.filename, status=status, total_rows=imp.total_rows, **state
    )
    if "total_rows" in extra:
        imp.total_rows = extra["total_rows"]
    snap.total_rows = imp.total_rows
    return snap


def import_file(
    *,
    path: str,
    filename: str | None = None,
    batch_size: int = BATCH,
    on_progress: ProgressFn | None = None,
    created_by: int | None = None,
) -> MemberImport:
    """Record and run an import of a local file in the current brand (commits: CLI and jobs)."""
    imp = create_import(filename=filename or path, path=path, created_by=created_by)
    db.session.commit()
    return run_import(import_id=imp.id, batch_size=batch_size, on_progress=on_progress)
