"""Reads for the console pages and the login: brands, stores, staff."""

from __future__ import annotations

from sqlalchemy import literal, or_, select

from core.db import db
from core.tenancy import use_brand
from core.validators import normalize_phone
from org.models import Brand, Staff, Store


def search_brands(*, q: str = ""):
    """A select of every brand (the platform admin's list), optionally filtered by text."""
    stmt = select(Brand).order_by(Brand.slug)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(Brand.slug.ilike(like) | Brand.name.ilike(like))
    return stmt


def list_brands() -> list[Brand]:
    """Every brand, by slug."""
    return list(db.session.execute(select(Brand).order_by(Brand.slug)).scalars())


def brands_with(model, *where) -> list[int]:
    """Ids of the brands with at least one row of ``model`` (a brand-owned table) matching
    ``where``, for the periodic jobs that start one job per brand with work due: one probe
    per brand through the table's index that leads with ``brand_id``, never a
    scan of every brand's rows nor their brand ids sent back one row each."""
    # A scalar subquery with LIMIT 1 (not EXISTS): PostgreSQL runs it per brand as written,
    # where it may turn an EXISTS into a join that reads every brand's matching rows first.
    probe = select(literal(1)).where(model.brand_id == Brand.id, *where).limit(1)
    stmt = select(Brand.id).where(probe.scalar_subquery().is_not(None)).order_by(Brand.id)
    return list(db.session.execute(stmt.execution_options(all_brands=True)).scalars())


def search_stores(*, q: str = "", store_id: int | None = None):
    """A select of the current brand's stores, optionally filtered by text or one store."""
    stmt = select(Store).order_by(Store.code)
    if store_id is not None:
        stmt = stmt.where(Store.id == store_id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(
                Store.code.ilike(like),
                Store.name.ilike(like),
                Store.city.ilike(like),
                Store.region.ilike(like),
            )
        )
    return stmt


def search_staff(
    *,
    q: str = "",
    store_id: int | None = None,
    staff_id: int | None = None,
    role: str | None = None,
):
    """A select of the current brand's staff, filtered by text, store, person or role."""
    stmt = select(Staff).order_by(Staff.role, Staff.name)
    if store_id is not None:
        stmt = stmt.where(Staff.store_id == store_id)
    if staff_id is not None:
        stmt = stmt.where(Staff.id == staff_id)
    if role:
        stmt = stmt.where(Staff.role == role)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Staff.name.ilike(like), Staff.phone.ilike(like)))
    return stmt


def store_staff(store_id: int) -> list[Staff]:
    """The staff of one store, by role and name."""
    return list(db.session.execute(search_staff(store_id=store_id)).scalars())


def staff_any_brand(staff_id: int) -> Staff | None:
    """A staff member by id whatever the current brand (the session's user loader)."""
    return db.session.execute(
        select(Staff).where(Staff.id == staff_id).execution_options(all_brands=True)
    ).scalar_one_or_none()


def find_login(brand_slug: str, phone: str) -> Staff | None:
    """The staff member who logs in with this brand code and phone."""
    if not brand_slug:
        return None
    brand = Brand.by_slug(brand_slug)
    if brand is None or not brand.active:
        return None
    with use_brand(brand.id):
        return Staff.by_phone(normalize_phone(phone))
