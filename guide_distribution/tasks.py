"""Tasks from HQ (总部任务): an operator asks chosen guides (or every guide of chosen stores)
to send a product, a text and/or an image to their bound customers (``CustomerBinding``),
optionally only those with a tag, before a deadline; each guide marks each customer as sent.

Completion is counted as it happens: marking a customer inserts one ``GuideTaskSend`` (unique
per task and customer) and, only when that insert happened, adds one to the guide's ``sent``
and the task's ``sent_total`` by conditional ``UPDATE`` (the guide's row first, then the
task's: one lock order, no deadlock), and one to ``guides_done`` when the guide's count
reaches the customers they had when the task was created. The console reads these counters;
it never counts the sends table.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from core import storage
from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from guide_distribution.models import (
    MATERIAL_TEXT_MAX,
    CustomerBinding,
    GuideTask,
    GuideTaskAssignee,
    GuideTaskSend,
)
from members.models import MemberTag, TagDefinition
from org.models import Staff
from shop.models import Product

TITLE_MAX = 80
GUIDES_MAX = 50_000


def image_prefix() -> str:
    return f"guide/b{require_brand_id()}/tasks"


def bound_customers(*, guide_ids, tag_id: int | None, now: dt.datetime):
    """The bindings (valid now) of these guides, only members with the tag when given."""
    stmt = select(CustomerBinding).where(
        CustomerBinding.guide_id.in_(guide_ids),
        or_(CustomerBinding.expires_at.is_(None), CustomerBinding.expires_at > now),
    )
    if tag_id is not None:
        stmt = stmt.where(
            exists().where(
                MemberTag.member_id == CustomerBinding.member_id, MemberTag.tag_id == tag_id
            )
        )
    return stmt


def _guides(*, guide_ids, store_ids) -> list[Staff]:
    conds = []
    if guide_ids:
        conds.append(Staff.id.in_(list(guide_ids)))
    if store_ids:
        conds.append(Staff.store_id.in_(list(store_ids)))
    if not conds:
        return []
    return list(
        db.session.execute(
            select(Staff)
            .where(or_(*conds), Staff.role == "guide", Staff.active.is_(True))
            .order_by(Staff.id)
            .limit(GUIDES_MAX + 1)
        ).scalars()
    )


def create_task(
    *,
    title: str,
    body: str = "",
    image: str | None = None,
    product_id: int | None = None,
    tag_id: int | None = None,
    deadline: dt.datetime,
    guide_ids=(),
    store_ids=(),
    created_by: int | None = None,
    now: dt.datetime | None = None,
) -> GuideTask:
    """A task for the chosen guides (and every active guide of the chosen stores), with each
    guide's number of customers to reach counted once, now."""
    now = now or utcnow()
    title, body = (title or "").strip(), (body or "").strip()
    if not title:
        raise ValidationError(_l("Give the task a title."), field="title")
    if len(title) > TITLE_MAX:
        raise ValidationError(
            _l("The title is longer than %(n)d characters.", n=TITLE_MAX), field="title"
        )
    if len(body) > MATERIAL_TEXT_MAX:
        raise ValidationError(
            _l("The text is longer than %(n)d characters.", n=MATERIAL_TEXT_MAX), field="body"
        )
    if image is not None and (
        not storage.is_key(image) or not image.startswith(image_prefix() + "/")
    ):
        raise ValidationError(storage.BAD_IMAGE, field="image")
    if product_id is not None and (
        db.session.execute(select(Product.id).where(Product.id == product_id)).scalar() is None
    ):
        raise ValidationError(_l("No such product."), field="product_id")
    if not (body or image or product_id):
        raise ValidationError(_l("Choose a product, write a text or add an image."), field="body")
    if tag_id is not None and (
        db.session.execute(select(TagDefinition.id).where(TagDefinition.id == tag_id)).scalar()
        is None
    ):
        raise ValidationError(_l("No such tag."), field="tag_id")
    if deadline <= now:
        raise ValidationError(_l("The deadline must be in the future."), field="deadline")
    guides = _guides(guide_ids=guide_ids, store_ids=store_ids)
    if not guides:
        raise ValidationError(_l("Choose guides or stores with active guides."), field="guides")
    if len(guides) > GUIDES_MAX:
        raise ValidationError(_l("Too many guides for one task."), field="guides")
    sub = bound_customers(guide_ids=[g.id for g in guides], tag_id=tag_id, now=now).subquery()
    counts = dict(
        db.session.execute(select(sub.c.guide_id, func.count()).group_by(sub.c.guide_id)).all()
    )
    task = GuideTask(
        title=title,
        body=body,
        image=image,
        product_id=product_id,
        tag_id=tag_id,
        deadline=deadline,
        guides_total=len(guides),
        # A guide with nobody to reach has nothing left to do.
        guides_done=sum(1 for g in guides if not counts.get(g.id)),
        customers_total=sum(counts.values()),
        sent_total=0,
        created_by=created_by,
        created_at=now,
    )
    db.session.add(task)
    db.session.flush()
    db.session.execute(
        insert(GuideTaskAssignee),
        [
            {
                "brand_id": task.brand_id,
                "task_id": task.id,
                "guide_id": g.id,
                "store_id": g.store_id,
                "customers": counts.get(g.id, 0),
                "sent": 0,
                "done_at": None if counts.get(g.id) else now,
            }
            for g in guides
        ],
    )
    db.session.flush()
    return task


def assignment(*, task_id: int, guide_id: int) -> tuple[GuideTask, GuideTaskAssignee]:
    """The task as given to this guide; NotFound when it was not given to them."""
    row = db.session.execute(
        select(GuideTask, GuideTaskAssignee)
        .join(GuideTaskAssignee, GuideTaskAssignee.task_id == GuideTask.id)
        .where(GuideTask.id == task_id, GuideTaskAssignee.guide_id == guide_id)
    ).first()
    if row is None:
        raise NotFound(_l("No such task."))
    return row[0], row[1]


def mark_sent(
    *, task_id: int, guide_id: int, member_id: int, now: dt.datetime | None = None
) -> bool:
    """Record that the guide sent the task to this customer of theirs; False if it already
    was. The customer must be bound to the guide (and carry the task's tag)."""
    now = now or utcnow()
    task, _mine = assignment(task_id=task_id, guide_id=guide_id)
    if task.deadline <= now:
        raise Conflict(_l("The task's deadline has passed."))
    is_mine = db.session.execute(
        bound_customers(guide_ids=[guide_id], tag_id=task.tag_id, now=now)
        .where(CustomerBinding.member_id == member_id)
        .with_only_columns(CustomerBinding.id)
    ).scalar()
    if is_mine is None:
        raise NotFound(_l("No such customer."))
    added = db.session.execute(
        insert(GuideTaskSend)
        .values(
            brand_id=require_brand_id(),
            task_id=task.id,
            guide_id=guide_id,
            member_id=member_id,
            sent_at=now,
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "task_id", "member_id"])
        .returning(GuideTaskSend.id)
    ).scalar()
    if added is None:
        return False
    sent, customers = db.session.execute(
        update(GuideTaskAssignee)
        .where(GuideTaskAssignee.task_id == task.id, GuideTaskAssignee.guide_id == guide_id)
        .values(sent=GuideTaskAssignee.sent + 1)
        .returning(GuideTaskAssignee.sent, GuideTaskAssignee.customers)
        .execution_options(synchronize_session=False)
    ).one()
    finished = sent == customers  # exactly once: the counter moves by one under the row lock
    if finished:
        db.session.execute(
            update(GuideTaskAssignee)
            .where(GuideTaskAssignee.task_id == task.id, GuideTaskAssignee.guide_id == guide_id)
            .values(done_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.execute(
        update(GuideTask)
        .where(GuideTask.id == task.id)
        .values(
            sent_total=GuideTask.sent_total + 1,
            guides_done=GuideTask.guides_done + (1 if finished else 0),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return True


def customers_of(*, task: GuideTask, guide_id: int, now: dt.datetime | None = None):
    """The guide's customers for this task with the time each was marked sent (or None)."""
    now = now or utcnow()
    return (
        bound_customers(guide_ids=[guide_id], tag_id=task.tag_id, now=now)
        .add_columns(GuideTaskSend.sent_at)
        .outerjoin(
            GuideTaskSend,
            and_(
                GuideTaskSend.task_id == task.id,
                GuideTaskSend.member_id == CustomerBinding.member_id,
            ),
        )
    )
