"""Payouts (提现 / 发放) and monthly statements.

A payout takes an amount out of the guide's withdrawable balance at once (a conditional
UPDATE: of two withdrawals of one balance only one passes) and holds it as ``paying``
until it ends:
- above the brand's ``approval_over_fen`` it waits for the brand's approval (refused: the
  money goes back);
- by WeChat Pay's merchant transfer (``wechat.pay.pay_transfer_bill``, scene 1005 佣金报酬)
  the bill waits for the guide to confirm it in WeChat (``package_info``,
  ``requestMerchantTransfer``); a query (the job, or the guide's page after confirming)
  gives SUCCESS (paid) or FAIL (the money goes back, paying any debt first);
- a guide without a WeChat identity (or a payout from ¥2,000, where WeChat Pay wants the
  receiver's real name) is paid by the brand's payroll: approved payouts are exported (CSV)
  and the export marks them paid.
Every state change is one conditional UPDATE from the expected state, a ``PayoutEvent``
row and an audit entry. Monthly statements (``close_month``) sum each guide's ledger for a
month and pay out the withdrawable balance when it reaches ``payout_min_fen``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text, update

from core import audit
from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from guide_distribution import ledger
from guide_distribution.models.commission import (
    METHOD_PAYROLL,
    METHOD_TRANSFER,
    P_APPROVAL,
    P_APPROVED,
    P_FAILED,
    P_PAID,
    P_REFUSED,
    P_TRANSFERRING,
    P_WAIT_CONFIRM,
    CommissionStatement,
    Payout,
    PayoutEvent,
)
from guide_distribution.settings import get_settings

log = logging.getLogger(__name__)
# From ¥2,000 a merchant transfer must carry the receiver's real name (encrypted), which the
# product does not hold for guides: such payouts go through the brand's payroll.
TRANSFER_NAME_FROM_FEN = 200_000


def _actor_label() -> str:
    actor = audit.current_actor()
    return actor.label if actor else "system"


def _event(payout: Payout, old: str | None, new: str, note: str = "", detail=None) -> None:
    db.session.add(
        PayoutEvent(
            brand_id=require_brand_id(),
            payout_id=payout.id,
            old_state=old,
            new_state=new,
            actor=_actor_label()[:120],
            note=(note or "")[:200],
            detail=detail,
            created_at=utcnow(),
        )
    )
    audit.record(
        action=f"payout.{new}",
        object_type="guide_payout",
        object_id=payout.id,
        before={"state": old} if old else None,
        after={"state": new, "amount_fen": payout.amount_fen, "note": note or ""},
    )


def _move(payout_id: int, frm: tuple[str, ...], to: str, **values) -> Payout | None:
    """One conditional transition; the reloaded payout if this call made it, else None."""
    now = utcnow()
    won = db.session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.state.in_(frm))
        .values(state=to, updated_at=now, **values)
        .returning(Payout.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if won is None:
        return None
    return db.session.execute(
        select(Payout).where(Payout.id == payout_id).execution_options(populate_existing=True)
    ).scalar_one()


def guide_openid(guide_id: int) -> str | None:
    """The guide's WeChat identity under the brand: the openid of the member record with the
    guide's phone (mini-program first, then the official account)."""
    from members.models import Member, MemberIdentity
    from org.models import Staff

    phone = db.session.execute(select(Staff.phone).where(Staff.id == guide_id)).scalar()
    if not phone:
        return None
    rows = dict(
        db.session.execute(
            select(MemberIdentity.kind, MemberIdentity.value)
            .join(Member, Member.id == MemberIdentity.member_id)
            .where(Member.phone == phone, MemberIdentity.kind.in_(("mp_openid", "oa_openid")))
        ).all()
    )
    return rows.get("mp_openid") or rows.get("oa_openid")


def get_payout(payout_id: int, *, guide_id: int | None = None) -> Payout:
    stmt = select(Payout).where(Payout.id == payout_id)
    if guide_id is not None:
        stmt = stmt.where(Payout.guide_id == guide_id)
    payout = db.session.execute(stmt).scalar_one_or_none()
    if payout is None:
        raise NotFound(_l("No such payout."))
    return payout


def request(
    *, guide_id: int, amount_fen, request_key: str | None = None, source: str = "withdraw"
) -> Payout:
    """Take ``amount_fen`` out of the guide's withdrawable balance for a payout; flushes.

    The same ``request_key`` twice gives the first payout back (a double tap)."""
    from guide_distribution.attribution import active_guide
    from org.models import Staff

    staff = (
        db.session.execute(select(Staff).where(Staff.id == guide_id)).scalar_one_or_none()
        if isinstance(guide_id, int)
        else None
    )
    if staff is None or staff.role != "guide":
        raise NotFound(_l("No such guide."))
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise ValidationError(_l("Enter an amount above zero."), field="amount")
    settings = get_settings()
    if amount_fen < settings.payout_min_fen:
        raise ValidationError(
            _l(
                "The least you can withdraw is %(amount)s yuan.",
                amount=f"{settings.payout_min_fen / 100:.2f}",
            ),
            field="amount",
        )
    key = request_key or f"{source}:{secrets.token_hex(8)}"
    if len(key) > 100:
        raise ValidationError(_l("The request is not valid."), field="amount")
    existing = db.session.execute(select(Payout).where(Payout.request_key == key)).scalar()
    if existing is not None:
        return existing
    before = ledger.lock(guide_id)
    existing = db.session.execute(select(Payout).where(Payout.request_key == key)).scalar()
    if existing is not None:
        return existing
    if amount_fen > before.settled:
        raise ledger.InsufficientBalance(
            _l("The amount is more than your withdrawable balance."), field="amount"
        )
    openid = guide_openid(guide_id) if active_guide(guide_id) is not None else None
    if amount_fen >= TRANSFER_NAME_FROM_FEN:
        openid = None  # WeChat Pay wants the receiver's verified name from here: payroll
    needs_approval = amount_fen > settings.approval_over_fen
    payout = Payout(
        brand_id=require_brand_id(),
        guide_id=guide_id,
        out_bill_no="GP" + utcnow().strftime("%Y%m%d") + secrets.token_hex(8).upper(),
        request_key=key,
        amount_fen=amount_fen,
        method=METHOD_TRANSFER if openid else METHOD_PAYROLL,
        source=source,
        state=P_APPROVAL if needs_approval else P_APPROVED,
        openid=openid,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    db.session.add(payout)
    db.session.flush()
    ledger.apply(
        guide_id,
        key=f"payout:{payout.id}",
        kind="withdraw",
        payout_id=payout.id,
        settled=-amount_fen,
        paying=amount_fen,
    )
    _event(payout, None, payout.state, note=source)
    return payout


def send_when_ready(payout: Payout) -> None:
    """Enqueue the transfer of an approved transfer payout (after the caller's commit)."""
    if payout.state == P_APPROVED and payout.method == METHOD_TRANSFER:
        from core.jobs import enqueue
        from guide_distribution import jobs_commission as jobs

        enqueue(
            jobs.transfer_payout,
            require_brand_id(),
            payout.id,
            brand_id=require_brand_id(),
            dedupe_key=f"guide:transfer:{payout.id}",
        )


def _money_back(payout: Payout, kind: str) -> None:
    """A payout that did not happen: its money back to withdrawable, debt paid first."""
    before = ledger.lock(payout.guide_id)
    key = f"{kind}:{payout.id}"
    if ledger.has_entry(key):
        return
    recovered = min(payout.amount_fen, before.owed)
    ledger.apply(
        payout.guide_id,
        key=key,
        kind=kind,
        payout_id=payout.id,
        paying=-payout.amount_fen,
        settled=payout.amount_fen - recovered,
        owed=-recovered,
    )


def _mark_paid(payout: Payout, note: str = "") -> None:
    ledger.lock(payout.guide_id)
    key = f"paid:{payout.id}"
    if not ledger.has_entry(key):
        ledger.apply(
            payout.guide_id,
            key=key,
            kind="paid",
            payout_id=payout.id,
            paying=-payout.amount_fen,
            paid=payout.amount_fen,
        )


def approve(payout_id: int) -> Payout:
    payout = get_payout(payout_id)
    moved = _move(payout_id, (P_APPROVAL,), P_APPROVED, approved_by=_actor_label()[:120])
    if moved is None:
        raise ValidationError(_l("This payout is not waiting for approval."), field=None)
    _event(moved, payout.state, P_APPROVED)
    return moved


def refuse(payout_id: int, *, reason: str = "") -> Payout:
    payout = get_payout(payout_id)
    moved = _move(
        payout_id, (P_APPROVAL,), P_REFUSED, fail_reason=(reason or "")[:200], finished_at=utcnow()
    )
    if moved is None:
        raise ValidationError(_l("This payout is not waiting for approval."), field=None)
    _money_back(moved, "refused")
    _event(moved, payout.state, P_REFUSED, note=reason)
    return moved


def _report_infos(payout: Payout) -> list[dict]:
    local = utcnow().strftime("%Y-%m")
    return [
        {"info_type": "岗位类型", "info_content": "导购"},
        {
            "info_type": "报酬说明",
            "info_content": f"{local}导购佣金{payout.amount_fen / 100:.2f}元",
        },
    ]


def start_transfer(payout_id: int) -> Payout | None:
    """Mark an approved transfer payout as being sent (the caller commits before sending, so
    the bill number is ours before WeChat Pay hears of it). None if there is nothing to send."""
    payout = get_payout(payout_id)
    if payout.method != METHOD_TRANSFER:
        return None
    if payout.state == P_TRANSFERRING:
        return payout
    moved = _move(payout_id, (P_APPROVED,), P_TRANSFERRING)
    if moved is not None:
        _event(moved, P_APPROVED, P_TRANSFERRING)
    return moved


def send_transfer(payout_id: int) -> Payout:
    """Send a transferring payout to WeChat Pay (safe to repeat: WeChat Pay answers the same
    bill for the same out_bill_no). A timeout raises ``RetryableError`` for the job's retry."""
    from wechat import pay

    payout = get_payout(payout_id)
    if payout.state != P_TRANSFERRING:
        return payout
    try:
        bill = pay.pay_transfer_bill(
            require_brand_id(),
            out_bill_no=payout.out_bill_no,
            openid=payout.openid or "",
            amount_fen=payout.amount_fen,
            remark="导购佣金",
            report_infos=_report_infos(payout),
        )
    except pay.PayError as exc:
        return _finish(payout, "FAIL", reason=f"{exc.code}: {exc.message}"[:200])
    return apply_bill(payout, bill)


def apply_bill(payout: Payout, bill) -> Payout:
    """What WeChat Pay says of the bill: waiting for the guide, paid, or failed."""
    if bill.state == "WAIT_USER_CONFIRM" and payout.state == P_TRANSFERRING:
        moved = _move(
            payout.id,
            (P_TRANSFERRING,),
            P_WAIT_CONFIRM,
            transfer_bill_no=bill.transfer_bill_no or None,
            package_info=bill.package_info[:400] or None,
            wechat_state=bill.state,
        )
        if moved is not None:
            _event(moved, P_TRANSFERRING, P_WAIT_CONFIRM)
            return moved
        return get_payout(payout.id)
    if bill.state in ("SUCCESS", "FAIL", "CANCELLED"):
        return _finish(payout, bill.state, reason=bill.fail_reason)
    return payout


def _finish(payout: Payout, state: str, *, reason: str = "") -> Payout:
    to = P_PAID if state == "SUCCESS" else P_FAILED
    moved = _move(
        payout.id,
        (P_TRANSFERRING, P_WAIT_CONFIRM),
        to,
        wechat_state=state,
        fail_reason=(reason or None) if to == P_FAILED else None,
        finished_at=utcnow(),
    )
    if moved is None:
        return get_payout(payout.id)
    if to == P_PAID:
        _mark_paid(moved)
    else:
        _money_back(moved, "failed")
    _event(moved, payout.state, to, note=reason or "")
    return moved


def query(payout_id: int) -> Payout:
    """Ask WeChat Pay how a transfer went (after the guide confirmed, or from the job)."""
    from wechat import pay

    payout = get_payout(payout_id)
    if payout.state not in (P_TRANSFERRING, P_WAIT_CONFIRM):
        return payout
    try:
        bill = pay.pay_transfer_query(require_brand_id(), payout.out_bill_no)
    except pay.PayError as exc:
        if exc.code == "NOT_FOUND" and payout.state == P_TRANSFERRING:
            return send_transfer(payout_id)
        raise
    return apply_bill(payout, bill)


def export_payroll(*, payout_ids: list[int] | None = None) -> tuple[str, int]:
    """Approved payroll payouts as CSV (formula-safe); the export marks them paid."""
    import csv
    import io

    from core.csvsafe import safe_cell
    from org.models import Staff

    stmt = (
        select(Payout, Staff)
        .join(Staff, Staff.id == Payout.guide_id)
        .where(Payout.state == P_APPROVED, Payout.method == METHOD_PAYROLL)
        .order_by(Payout.id)
    )
    if payout_ids:
        stmt = stmt.where(Payout.id.in_(payout_ids))
    rows = db.session.execute(stmt).all()
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["单号", "导购", "手机号", "金额(元)", "申请时间"])
    for payout, staff in rows:
        moved = _move(payout.id, (P_APPROVED,), P_PAID, finished_at=utcnow())
        if moved is None:
            continue
        _mark_paid(moved)
        _event(moved, P_APPROVED, P_PAID, note="payroll")
        w.writerow(
            [
                safe_cell(payout.out_bill_no),
                safe_cell(staff.name),
                safe_cell(staff.phone),
                f"{payout.amount_fen / 100:.2f}",
                payout.created_at.strftime("%Y-%m-%d %H:%M"),
            ]
        )
    return "\ufeff" + out.getvalue(), len(rows)


# --- monthly statements ------------------------------------------------------------------------

_STATEMENTS = text(
    """
INSERT INTO guide_commission_statement
    (brand_id, guide_id, month, earned_fen, settled_fen, reversed_fen, owed_added_fen,
     recovered_fen, paid_fen, closing_settled_fen, closing_owed_fen, created_at)
SELECT :brand, e.guide_id, :month,
    COALESCE(SUM(e.d_pending) FILTER (WHERE e.kind = 'earn' AND e.created_at >= :start), 0),
    COALESCE(SUM(-e.d_frozen) FILTER (WHERE e.kind = 'settle' AND e.created_at >= :start), 0),
    COALESCE(SUM(e.d_owed - e.d_pending - e.d_frozen - e.d_settled)
             FILTER (WHERE e.kind = 'reverse' AND e.created_at >= :start), 0),
    COALESCE(SUM(e.d_owed) FILTER (WHERE e.kind = 'reverse' AND e.created_at >= :start), 0),
    COALESCE(SUM(-e.d_owed) FILTER (WHERE e.kind IN ('settle', 'failed', 'refused')
                                    AND e.created_at >= :start), 0),
    COALESCE(SUM(e.d_paid) FILTER (WHERE e.created_at >= :start), 0),
    SUM(e.d_settled), SUM(e.d_owed), :now
FROM guide_commission_entry e
WHERE e.brand_id = :brand AND e.created_at < :end
GROUP BY e.guide_id
ON CONFLICT (brand_id, guide_id, month) DO NOTHING
RETURNING guide_id, id
"""
)


def month_bounds(month: dt.date, tz) -> tuple[dt.datetime, dt.datetime]:
    first = month.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(nxt, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    return start, end


def close_month(month: dt.date, *, pay_out: bool = True) -> int:
    """Write each guide's statement of ``month`` (once) and pay out what is withdrawable
    when it reaches the brand's minimum. Returns the statements written.

    A month with statements is closed (all of them are written by one statement, and the
    entries of a month are all in before it ends): closing it again reads nothing else."""
    from org.models import Brand

    first = month.replace(day=1)
    closed = db.session.execute(
        select(CommissionStatement.id).where(CommissionStatement.month == first).limit(1)
    ).first()
    if closed is not None:
        return 0
    brand = db.session.get(Brand, require_brand_id())
    start, end = month_bounds(first, brand.tz)
    written = db.session.execute(
        _STATEMENTS,
        {"brand": brand.id, "month": first, "start": start, "end": end, "now": utcnow()},
    ).all()
    if not pay_out:
        return len(written)
    minimum = max(get_settings().payout_min_fen, 1)
    for guide_id, statement_id in written:
        available = ledger.balances(guide_id).settled
        if available < minimum:
            continue
        try:
            payout = request(
                guide_id=guide_id,
                amount_fen=available,
                request_key=f"statement:{first.isoformat()}:{guide_id}",
                source="statement",
            )
        except (ValidationError, NotFound) as exc:
            log.info("statement %s: no payout (%s)", statement_id, exc)
            continue
        send_when_ready(payout)
        db.session.execute(
            update(CommissionStatement)
            .where(CommissionStatement.id == statement_id)
            .values(payout_id=payout.id)
            .execution_options(synchronize_session=False)
        )
    return len(written)
