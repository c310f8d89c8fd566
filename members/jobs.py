"""Jobs of the members package.

Periodic (listed in ``app.periodic_jobs()``):

* ``review_due_tiers``: hourly; applies the yearly tier review of every brand whose review
  date (brand-local) has come, once per review date.
* ``tag_lapsed_members``: hourly; enqueues ``tag_lapsed_brand`` per brand, which sets the
  ``lapsed_90d`` behaviour tag on the members who lapsed since its last run (a purchase
  clears it at once).
"""

from __future__ import annotations

import time

from sqlalchemy import select

from core.db import db
from core.jobs import enqueue, job
from core.tenancy import use_brand
from members import imports
from members.tiers_tags import tags, tiers
from org.models import Brand


def _brand_ids() -> list[int]:
    return list(db.session.execute(select(Brand.id).where(Brand.active.is_(True))).scalars())


@job("low", timeout=1800, retries=2)
def review_due_tiers() -> dict[int, int]:
    """Run the tier review of every brand whose review date has come (idempotent)."""
    changed = {}
    for brand_id in _brand_ids():
        with use_brand(brand_id):
            changed[brand_id] = tiers.review_tiers()
    return changed


@job("low", timeout=300, retries=2)
def tag_lapsed_members() -> int:
    """Enqueue the lapsed tag of every active brand (one job per brand and hour)."""
    slot = int(time.time()) // 3600
    brand_ids = _brand_ids()
    for brand_id in brand_ids:
        enqueue(
            tag_lapsed_brand,
            brand_id,
            brand_id=brand_id,
            dedupe_key=f"members:lapsed:{brand_id}:{slot}",
        )
    return len(brand_ids)


@job("low", timeout=1800, retries=2)
def tag_lapsed_brand(brand_id: int) -> int:
    """Tag a brand's members who lapsed for 90 brand-local days since the last run."""
    with use_brand(brand_id):
        return tags.tag_lapsed()


@job("low", timeout=6 * 3600, retries=0)
def import_members_job(import_id: int) -> None:
    """Run a console-uploaded import (progress is committed batch by batch)."""
    imports.run_import(import_id=import_id)
